"""P16: imports of names backported into ``vllm_fl/compat/`` point at the copies.

What: a name the pin defines nowhere (not even under another module, P15) that step 4 copied
from upstream into a compat module is imported from there; other names of the statement stay::

    from vllm.model_executor.models.utils import (
        AutoWeightsLoader,
        get_spec_layer_idx_from_weight_name,
    )
    # becomes
    from vllm.model_executor.models.utils import (
        AutoWeightsLoader,
    )
    from vllm_fl.compat.model_executor.models.utils import get_spec_layer_idx_from_weight_name

The compat modules themselves are written by step 4 beside the migrated files, through the same
manifest-guarded writer: each is the upstream module pruned to the definitions needed
(``PatchContext.backports`` maps each import to its copy). One count per statement.

Why: upstream added helpers after 0.13.0 (``is_vit_use_data_parallel``,
``get_spec_layer_idx_from_weight_name``, ``ShardId``...). Copying them is behaviour-preserving
when everything they use exists in the pin: :mod:`pytest_flmigrate.autofix.backport` copies a name only
then, transitively and within a bound (30 definitions / 1500 lines per name), and refuses code
that registers itself at import or calls ``torch.ops`` kernels. What it refuses stays a
finding ("port by hand").

When: any migrated file importing a helper the pin lacks, whatever the pin.
"""

from __future__ import annotations

from .base import PatchContext
from .imports import TableRedirect, mentions

ID = "P16"
NAME = "backport-helpers"
PINNED = ">=0"  # the copies come from comparing the trees, for any pin


def relevant(source: str, context: PatchContext) -> bool:
    """Only files spelling a backported name can need this patch."""
    return mentions(source, context.backports)


class Transformer(TableRedirect):
    table = "backports"
