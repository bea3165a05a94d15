from textwrap import dedent

import pytest

from pytest_flmigrate.patches import p19_fused_moe_factory as p19
from pytest_flmigrate.patches.translation import shim_function
from tests.patches.conftest import FACTORY_IMPORT as IMPORT
from tests.patches.conftest import moe_model as moe
from tests.patches.conftest import patch_context

SHIM = "from vllm.model_executor.layers.fused_moe import GateLinear\nfrom vllm_fl.compat.moe_runner import FusedMoEFactory\n"
PACKAGE = "vllm.model_executor.models"


GROUPED = (
    "shared_experts=self.shared_experts, gate=self.gate, num_experts=8, top_k=2, hidden_size=h, "
    "intermediate_size=i, renormalize=True, activation='silu', swiglu_limit=swiglu_limit, "
    "use_grouped_topk=True, num_expert_group=2, topk_group=1, scoring_func='sigmoid', "
    "routed_scaling_factor=2.5, e_score_correction_bias=self.e_score_correction_bias, "
    "apply_routed_scale_to_output=True, router_logits_dtype=torch.float32, prefix='e'"
)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param('num_experts=4, top_k=2, hidden_size=8, intermediate_size=16, prefix="e"', id="plain"),
        pytest.param(GROUPED, id="gate-grouped-topk-correction-bias-shared-scale"),
        pytest.param("4, 2, 8, 16, custom_routing_function=route, reduce_results=False", id="custom-routing"),
    ],
)
def test_the_import_points_at_the_shim_and_the_calls_stay(rewrite, args):
    before = moe(args, "self.experts(hidden_states=hidden_states, router_logits=hidden_states)")
    assert p19.refusal(before, PACKAGE) is None
    assert rewrite(p19, before) == (before.replace(IMPORT, SHIM), 1)


def test_runner_annotations_and_fused_shared_switches_point_at_the_shim(rewrite):
    before = (
        "from vllm.model_executor.layers.fused_moe import MoERunner\n"
        "from vllm.model_executor.layers.fused_moe.utils import resolve_layer_fused_shared_expert\n"
        "layers: list[MoERunner] = []\nfused = resolve_layer_fused_shared_expert(quant_config, prefix)\n"
    )
    text, count = rewrite(p19, before)
    assert text == (
        "from vllm_fl.compat.moe_runner import MoERunner\n"
        "from vllm_fl.compat.moe_runner import resolve_layer_fused_shared_expert\n"
        "layers: list[MoERunner] = []\nfused = resolve_layer_fused_shared_expert(quant_config, prefix)\n"
    )
    assert count == 2


def test_strings_naming_the_runners_layout_name_the_pins(rewrite):
    before = moe("4, 2, 8, 16") + dedent("""\
        MAPPING = [(f".moe.experts.routed_experts.{base_layer}w13_weight", ".moe.gate_proj.weight", "w1")]
        QUANT = "routed_experts_quant_method"
        """)
    text, count = rewrite(p19, before)
    assert 'f".moe.experts.{base_layer}w13_weight"' in text and '"routed_experts_quant_method"' in text
    assert count == 2  # the import and the one string


def test_the_keywords_and_values_checked_are_the_shims():
    shim = shim_function(p19.SHIM, p19.API.name)
    assert shim.positional == ("num_experts", "top_k", "hidden_size", "intermediate_size")
    assert {"gate", "shared_experts", "e_score_correction_bias", "apply_routed_scale_to_output"} <= shim.keywords
    assert "runner_cls" not in shim.keywords and shim.accepted["swiglu_limit"] == (None,)
    assert shim.accepted["intermediate_pad"] == (None, 0)  # 0: no padding, what the pin's experts do


def test_gelu_tanh_experts_are_translated(rewrite):
    """Gemma 4's experts (0.32.0): the shim runs them unfused with the pin's GELU-tanh."""
    assert p19.refusal(moe("4, 2, 8, 16, activation='gelu_tanh'"), PACKAGE) is None
    assert rewrite(p19, moe("4, 2, 8, 16, activation='gelu_tanh'"))[1] > 0


def test_an_explicit_zero_intermediate_pad_is_translated_and_a_padding_is_refused(rewrite):
    """minimax_m3 (0.32.0) passes intermediate_pad=0; a real padding has no pinned spelling."""
    assert p19.refusal(moe("4, 2, 8, 16, intermediate_pad=0"), PACKAGE) is None
    assert rewrite(p19, moe("4, 2, 8, 16, intermediate_pad=0"))[1] > 0
    refused = p19.refusal(moe("4, 2, 8, 16, intermediate_pad=64"), PACKAGE)
    assert refused is not None and "intermediate_pad=64 has no spelling" in refused.reason


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        (moe("4, 2, 8, 16, runner_cls=MyRunner"), 4, "runner_cls= has no spelling on the pin's FusedMoE"),
        (moe("4, 2, 8, 16, routed_input_transform=t"), 4, "routed_input_transform= has no spelling"),
        (moe("4, 2, 8, 16, activation='relu2'"), 4, "activation='relu2' has no spelling on the pin's"),
        (moe("4, 2, 8, 16, swiglu_limit=7.0"), 4, "swiglu_limit=7.0 has no spelling on the pin's FusedMoE"),
        (moe("4, 2, 8, 16, scoring_func='sqrtsoftplus'"), 4, "it takes 'softmax' or 'sigmoid'"),
        (moe("4, 2, 8, 16, 0"), 4, "more than 4 positional arguments"),
        (moe("**kwargs"), 4, "*args/**kwargs cannot be checked"),
        (moe("4, 2, 8, 16", "self.experts(hidden_states, router_logits, input_ids=ids)"), 7, "takes only hidden"),
        (IMPORT + "factory = FusedMoEFactory\n", 2, "FusedMoEFactory: used other than called"),
        (
            moe("4, 2, 8, 16") + 'P = ".routed_experts"\n',
            8,
            "FusedMoEFactory: a string names upstream's routed_experts other than as",
        ),
        (
            "from vllm.model_executor.layers.fused_moe import MoERunner\n\nr = MoERunner(layer_name='x')\n",
            3,
            "upstream's runner constructor",
        ),
        ("from vllm.model_executor.layers.fused_moe import MoERunner\nclass R(MoERunner):\n    pass\n", 2, "derives"),
    ],
)
def test_a_use_without_a_pinned_spelling_is_refused_with_its_line(rewrite, source, line, reason):
    found = p19.refusal(source, PACKAGE)
    assert found is not None and found.line == line and reason in found.reason, found
    assert rewrite(p19, source) == (source, 0)
    assert p19.rewritten_imports(source, PACKAGE) == set()


def test_a_value_known_only_at_run_time_is_left_to_the_shim():
    assert p19.refusal(moe("4, 2, 8, 16, swiglu_limit=limit, activation=config.hidden_act"), PACKAGE) is None


def test_a_file_not_importing_the_api_is_neither_refused_nor_rewritten(rewrite):
    source = "from somewhere import FusedMoEFactory\nx = FusedMoEFactory(4, 2, 8, 16, runner_cls=R)\n"
    assert p19.refusal(source, PACKAGE) is None
    assert rewrite(p19, source) == (source, 0)


def test_idempotent(rewrite):
    once, _ = rewrite(p19, moe("4, 2, 8, 16, shared_experts=s"))
    assert rewrite(p19, once) == (once, 0)


def test_relevance():
    assert p19.relevant(IMPORT, patch_context())
    assert p19.relevant("x: MoERunner\n", patch_context())
    assert not p19.relevant("import torch\n", patch_context())
