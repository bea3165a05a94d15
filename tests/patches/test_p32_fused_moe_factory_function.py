import pytest

from pytest_flmigrate.patches import p32_fused_moe_factory_function as p32
from pytest_flmigrate.patches.translation import shim_function
from tests.patches.conftest import FACTORY_IMPORT as IMPORT
from tests.patches.conftest import moe_model as moe
from tests.patches.conftest import patch_context

SHIM = "from vllm.model_executor.layers.fused_moe import GateLinear\nfrom vllm_fl.compat.moe_factory import FusedMoEFactory\n"
PACKAGE = "vllm.model_executor.models"


GLM5NEXT = (
    "shared_experts=self.shared_experts, gate=self.gate, num_experts=8, top_k=2, hidden_size=h, "
    "intermediate_size=i, renormalize=True, use_grouped_topk=True, num_expert_group=2, topk_group=1, "
    "scoring_func='sigmoid', routed_scaling_factor=2.5, apply_routed_scale_to_output=True, "
    "e_score_correction_bias=self.gate.e_score_correction_bias, n_shared_experts=None, "
    "fuse_shared_experts=self.fused, shared_expert_prefix=f'{prefix}.shared_experts', "
    "router_logits_dtype=self.gate.out_dtype, swiglu_limit=7.0, prefix='e'"
)
"""glm5next's call (0.32.0): the pin's factory takes a SwiGLU limit, the fusion switch is a run-time value."""


@pytest.mark.parametrize(
    "args",
    [
        pytest.param('num_experts=4, top_k=2, hidden_size=8, intermediate_size=16, prefix="e"', id="plain"),
        pytest.param(GLM5NEXT, id="glm5next"),
        pytest.param("4, 2, 8, 16, runner_cls=MyRunner, routed_input_transform=t, reduce_results=True", id="runner"),
        pytest.param("4, 2, 8, 16, activation='gelu_tanh', scoring_func='sqrtsoftplus'", id="the-pins-values"),
    ],
)
def test_the_import_points_at_the_shim_and_the_calls_stay(rewrite, args):
    before = moe(args, "self.experts(hidden_states=hidden_states, router_logits=hidden_states, input_ids=ids)")
    assert p32.refusal(before, PACKAGE) is None
    assert rewrite(p32, before) == (before.replace(IMPORT, SHIM), 1)


def test_the_layout_is_the_pins_own_and_strings_stay(rewrite):
    before = moe("4, 2, 8, 16") + 'MAPPING = [".moe.experts.routed_experts.w13_weight"]\n'
    assert rewrite(p32, before) == (before.replace(IMPORT, SHIM), 1)


def test_fused_shared_switches_point_at_the_shim_and_the_pins_runner_stays(rewrite):
    before = (
        "from vllm.model_executor.layers.fused_moe import MoERunner\n"
        "from vllm.model_executor.layers.fused_moe.utils import resolve_layer_fused_shared_expert\n"
        "layers: list[MoERunner] = []\nfused = resolve_layer_fused_shared_expert(quant_config, prefix)\n"
    )
    assert rewrite(p32, before) == (
        before.replace(
            "from vllm.model_executor.layers.fused_moe.utils import", "from vllm_fl.compat.moe_factory import"
        ),
        1,
    )


def test_the_keywords_and_values_checked_are_the_shims():
    shim = shim_function(p32.SHIM, p32.API.name)
    assert shim.positional == ("num_experts", "top_k", "hidden_size", "intermediate_size")
    assert {"gate", "runner_cls", "hash_indices_table", "swiglu_limit", "skip_padding"} <= shim.keywords
    assert shim.accepted["reduce_results"] == (True,) and shim.accepted["fuse_shared_experts"] == (False,)
    assert "swiglu_limit" not in shim.accepted and "activation" not in shim.accepted


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        (moe("4, 2, 8, 16, reduce_results=False"), 4, "reduce_results=False has no spelling on the pin's FusedMoE"),
        (moe("4, 2, 8, 16, fuse_shared_experts=True"), 4, "fuse_shared_experts=True has no spelling"),
        (
            moe("4, 2, 8, 16, intermediate_pad=64"),
            4,
            "intermediate_pad=64 has no spelling on the pin's FusedMoE (it takes None)",
        ),
        (moe("4, 2, 8, 16, activation_situ_beta=1.0"), 4, "activation_situ_beta=1.0 has no spelling"),
        (moe("4, 2, 8, 16, expert_mapping=m"), 4, "expert_mapping= has no spelling on the pin's FusedMoE"),
        (moe("4, 2, 8, 16, 0"), 4, "more than 4 positional arguments"),
        (moe("**kwargs"), 4, "*args/**kwargs cannot be checked"),
        (
            moe("4, 2, 8, 16", "self.experts(hidden_states, router_logits, shared_experts_input=x)"),
            7,
            "the layer takes only hidden_states, router_logits and input_ids",
        ),
        (IMPORT + "factory = FusedMoEFactory\n", 2, "FusedMoEFactory: used other than called"),
    ],
)
def test_a_use_without_a_pinned_spelling_is_refused_with_its_line(rewrite, source, line, reason):
    found = p32.refusal(source, PACKAGE)
    assert found is not None and found.line == line and reason in found.reason, found
    assert rewrite(p32, source) == (source, 0)
    assert p32.rewritten_imports(source, PACKAGE) == set()


def test_idempotent(rewrite):
    once, _ = rewrite(p32, moe("4, 2, 8, 16, shared_experts=s"))
    assert rewrite(p32, once) == (once, 0)


def test_relevance():
    assert p32.relevant(IMPORT, patch_context())
    assert not p32.relevant("x: MoERunner\n", patch_context())
