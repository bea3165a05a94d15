"""P15: imports of names the pin defines under another module point there.

What: a name the migrated file imports from a module that, in the pin, lacks it, while the pin
defines *the same API* elsewhere, is imported from there (the statement splits when other names
stay)::

    from vllm.model_executor.layers.attention import Attention
    from vllm.v1.attention.backend import AttentionType
    # becomes
    from vllm.attention.layer import Attention
    from vllm.attention.backends.abstract import AttentionType

    from vllm.multimodal.processing import BaseMultiModalProcessor, BaseDummyInputsBuilder
    # becomes
    from vllm.multimodal.processing import BaseMultiModalProcessor
    from vllm.multimodal.profiling import BaseDummyInputsBuilder

A name spelled differently at its new home is imported ``as`` the old spelling, so the code
using it is untouched. One count per statement.

Why: upstream moved these definitions after 0.13.0 (``vllm.attention`` ->
``vllm.model_executor.layers.attention``, ``vllm.multimodal.profiling`` ->
``vllm.multimodal.processing``, ``vllm.attention.backends`` -> ``vllm.v1.attention``...); the
pin still has them at the old place. The table (``PatchContext.relocations``) is not written by
hand: :mod:`pytest_flmigrate.autofix.relocate` derives it by comparing the upstream and pinned trees
and accepts a move only when the kind agrees, signatures are compatible, and classes keep most
of their members (functions must be the same code; a helper whose body changed is backported
instead, P16). Calls the moved API no longer accepts are step 6's findings.

When: any migrated file importing moved names; the table is computed for whatever pin is given.
"""

from __future__ import annotations

from .base import PatchContext
from .imports import TableRedirect, mentions

ID = "P15"
NAME = "relocate-imports"
PINNED = ">=0"  # the table comes from comparing the trees, for any pin


def relevant(source: str, context: PatchContext) -> bool:
    """Only files spelling a relocated name can need this patch."""
    return mentions(source, context.relocations)


class Transformer(TableRedirect):
    table = "relocations"
