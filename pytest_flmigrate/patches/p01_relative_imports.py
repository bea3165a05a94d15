"""P1: relative imports become absolute, pointing into the plugin where the migration put the module.

What: ``from .utils import maybe_prefix`` -> ``from vllm.model_executor.models.utils import
maybe_prefix``; ``from .qwen3_next import X`` -> ``from vllm_fl.models.qwen3_next import X`` when
this migration writes ``qwen3_next`` into the plugin (the context's ``module_map``);
``from . import kimi_k25_vit`` -> ``from vllm_fl.models import kimi_k25_vit`` for a mapped
submodule. Multi-level (``from ..layers.x import y``) resolves the same way. A statement whose
names land in different modules is split, one statement per module. One count per statement.

Why: relative imports resolve against the package a file lives in; once an upstream model file
is copied into ``vllm_fl/models/`` they would point into the plugin, where those modules are
missing.

When: every migrated file with a relative import, whatever the pin.
"""

from __future__ import annotations

import re

import libcst as cst

from pytest_flmigrate.index.symbols import absolute_module

from .base import PatchContext
from .imports import ImportRedirectTransformer, Location, module_location
from .syntax import dotted_name

ID = "P1"
NAME = "relative-imports"
PINNED = ">=0"  # every pin: files move into the plugin whatever vLLM it runs on
RELATIVE_IMPORT = re.compile(r"\bfrom\s*\.")


def relevant(source: str, context: PatchContext) -> bool:
    """A relative import is spelled ``from .`` (spaces aside): a file without one is not visited."""
    return RELATIVE_IMPORT.search(source) is not None


class Transformer(ImportRedirectTransformer):
    def module_of(self, node: cst.ImportFrom) -> str | None:
        if not node.relative:
            return None
        return absolute_module(self.context.package, len(node.relative), dotted_name(node.module))

    def locate(self, module: str, name: str) -> Location:
        return module_location(self.context.module_map, module, name)
