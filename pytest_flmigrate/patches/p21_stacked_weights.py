"""P21: models loading through upstream's stacked-weights protocol use its port for the pin.

What: a file that builds ``WeightsMapper(orig_to_new_stacked=...)`` imports ``WeightsMapper``
and ``AutoWeightsLoader`` from ``vllm_fl.compat.stacked_weights``, a module step 4 writes
beside the migrated files (``pytest_flmigrate/autofix/shims/stacked_weights.py``)::

    from vllm.model_executor.models.utils import AutoWeightsLoader, WeightsMapper, maybe_prefix
    hf_to_vllm_mapper = WeightsMapper(orig_to_new_stacked={".q_proj": (".qkv_proj", "q"), ...})
    # becomes
    from vllm.model_executor.models.utils import maybe_prefix
    from vllm_fl.compat.stacked_weights import AutoWeightsLoader, WeightsMapper
    hf_to_vllm_mapper = WeightsMapper(orig_to_new_stacked={".q_proj": (".qkv_proj", "q"), ...})

One count per import statement.

Why: upstream 0.31+ replaced the per-model ``stacked_params_mapping`` loops with a mapper field:
the mapper renames ``.q_proj`` to ``.qkv_proj`` and tags the tensor with its shard id, and the
layers' own ``load_weights`` pass the id to their ``weight_loader``; routed experts load through
the MoE runner. vLLM 0.13's ``WeightsMapper`` has no such field (the class body fails at import:
``unexpected keyword argument 'orig_to_new_stacked'``) and its layers no ``load_weights``, so
neither a backport of upstream's classes alone nor dropping the field keeps behaviour. The port
subclasses the pin's classes: the same name mapping in upstream's order, the shard id given to
the pin's ``weight_loader`` (the third argument of its stacked layers), per-expert checkpoint
tensors loaded into the pin's ``FusedMoE`` through its ``make_expert_params_mapping`` (the
names P19's layers hold), unexpected ``.bias`` tensors ignored as upstream does. The names stay
the pin's where nothing is stacked, so the rest of the file is untouched.

When: any file declaring ``orig_to_new_stacked`` (96 upstream 0.32 model files: Llama, Qwen2,
Qwen2-MoE, OLMoE, Cohere2-MoE, ...), in particular overrides of architectures the pin has; at
any pin whose ``WeightsMapper`` lacks the field and whose classes take the port's calls. ``orig_to_new_regex`` and the other upstream-only fields stay step 6 findings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from .base import PatchContext
from .imports import ImportRedirectTransformer, Location
from .syntax import parsed
from .translation import Api, Uses, bound_names, import_module, keywords

if TYPE_CHECKING:
    from pytest_flmigrate.index.resolve import Resolver

ID = "P21"
NAME = "stacked-weights"
PINNED = ">=0"  # keyed by the trees: pin_gap

UTILS = "vllm.model_executor.models.utils"
MAPPER = Api("WeightsMapper", (UTILS,))
NAMES = ("WeightsMapper", "AutoWeightsLoader")
SHIM = "stacked_weights"
"""``pytest_flmigrate/autofix/shims/stacked_weights.py``, written as ``vllm_fl/compat/stacked_weights.py``."""
COMPAT_MODULE = f"vllm_fl.compat.{SHIM}"
FIELD = "orig_to_new_stacked"


def relevant(source: str, context: PatchContext) -> bool:
    return FIELD in source


def pin_gap(pinned: Resolver) -> str | None:
    """The pin's ``WeightsMapper`` takes no ``orig_to_new_stacked`` (step 4 checks the port's calls
    against the pin too)."""
    found = pinned.resolve(UTILS, MAPPER.name)
    if found is None or found.kind != "class":
        return f"the pin has no {UTILS}.{MAPPER.name} to port the field onto"
    constructor, _ = pinned.constructor(found.module, found.name)
    if constructor is not None and constructor.function is not None:
        if any(param.name == FIELD for param in constructor.function.params):
            return f"the pin's {MAPPER.name} takes {FIELD}"
    return None


def uses_stacked_field(module: cst.Module, package: str) -> bool:
    """Whether the file builds the pin's ``WeightsMapper`` with ``orig_to_new_stacked``."""
    names = bound_names(module, package, MAPPER)
    return bool(names) and any(FIELD in keywords(call) for call in Uses.of(module, names).calls)


def rewritten_imports(source: str, package: str) -> set[tuple[str, str]]:
    """The imports P21 points at the port (step 4 then writes the port's module)."""
    if FIELD not in source or not uses_stacked_field(parsed(source), package):
        return set()
    return {(UTILS, name) for name in NAMES}


class Transformer(ImportRedirectTransformer):
    def visit_Module(self, node: cst.Module) -> None:
        self._on = uses_stacked_field(node, self.context.package)

    def module_of(self, node: cst.ImportFrom) -> str | None:
        module = import_module(node, self.context.package)
        return module if self._on and module == UTILS else None

    def locate(self, module: str, name: str) -> Location:
        return (COMPAT_MODULE, name) if module == UTILS and name in NAMES else (module, name)
