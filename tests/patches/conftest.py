"""Shared helpers for the patch tests: a context at the pin, one catalog module's transformer run on a source string."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from types import ModuleType

import libcst as cst
import pytest
from packaging.version import Version

from pytest_flmigrate.patches.base import PatchContext

MODEL_MODULE = "vllm.model_executor.models.qwen3_5"
PIN = Version("0.13.0")
PIN_TRANSFORMERS = Version("4.57.6")


def patch_context(module: str = MODEL_MODULE, **fields) -> PatchContext:
    """A :class:`PatchContext` for ``module`` at the pin these tests migrate to."""
    fields.setdefault("pinned_transformers", PIN_TRANSFORMERS)
    return PatchContext(module=module, pinned_version=PIN, **fields)


def run_patch(
    module: ModuleType,
    source: str,
    *,
    module_name: str = MODEL_MODULE,
    is_package: bool = False,
    module_map: dict[str, str] | None = None,
    name_map: dict[tuple[str, str], str] | None = None,
    relocations: dict[tuple[str, str], tuple[str, str]] | None = None,
    backports: dict[tuple[str, str], tuple[str, str]] | None = None,
) -> tuple[str, int]:
    """(rewritten source, rewrite count) for ``source`` (dedented first)."""
    context = patch_context(
        module_name,
        is_package=is_package,
        module_map=module_map or {},
        name_map=name_map or {},
        relocations=relocations or {},
        backports=backports or {},
    )
    transformer = module.Transformer(context)
    tree = cst.parse_module(textwrap.dedent(source)).visit(transformer)
    return tree.code, transformer.count


FACTORY_IMPORT = "from vllm.model_executor.layers.fused_moe import FusedMoEFactory, GateLinear\n"
"""How upstream's MoE models import the runner API (P19, P32)."""


def moe_model(factory_args: str, forward: str = "self.experts(hidden_states, router_logits)") -> str:
    """A model module building its experts with upstream's ``FusedMoEFactory(factory_args)``."""
    return FACTORY_IMPORT + textwrap.dedent(f"""\
        class MoE(nn.Module):
            def __init__(self):
                self.experts = FusedMoEFactory({factory_args})

            def forward(self, hidden_states, router_logits):
                return {forward}
        """)


@pytest.fixture
def rewrite() -> Callable[..., tuple[str, int]]:
    return run_patch
