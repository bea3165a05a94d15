from textwrap import dedent

import pytest

from pytest_flmigrate.patches import p19_fused_moe_factory as p19
from tests.patches.conftest import patch_context

IMPORT = "from vllm.model_executor.layers.fused_moe import FusedMoEFactory, GateLinear\n"


def moe(factory_args: str, forward: str = "self.experts(hidden_states, router_logits)") -> str:
    return IMPORT + dedent(f"""\
        class MoE(nn.Module):
            def __init__(self):
                self.experts = FusedMoEFactory({factory_args})

            def forward(self, hidden_states, router_logits):
                return {forward}
        """)


def test_plain_layer_is_fused_moe_reducing_as_upstream(rewrite):
    before = moe('num_experts=4, top_k=2, hidden_size=8, intermediate_size=16, prefix="e"')
    after = rewrite(p19, before)
    assert after == (
        before.replace("FusedMoEFactory, GateLinear", "FusedMoE, GateLinear").replace(
            'FusedMoEFactory(num_experts=4, top_k=2, hidden_size=8, intermediate_size=16, prefix="e")',
            'FusedMoE(num_experts=4, top_k=2, hidden_size=8, intermediate_size=16, prefix="e", reduce_results=True)',
        ),
        2,
    )


def test_shared_experts_layer_adds_the_pair_the_pin_returns(rewrite):
    before = moe(
        "4, 2, 8, 16, shared_experts=self.shared_experts", "self.experts(hidden_states=h, router_logits=r) / 2"
    )
    text, count = rewrite(p19, before)
    assert "from vllm.model_executor.layers.fused_moe import SharedFusedMoE, GateLinear\n" in text
    assert "SharedFusedMoE(4, 2, 8, 16, shared_experts=self.shared_experts, reduce_results=True)" in text
    assert "return sum(out for out in self.experts(hidden_states=h, router_logits=r) if out is not None) / 2" in text
    assert count == 2


def test_both_kinds_in_one_file_import_both(rewrite):
    before = IMPORT + dedent("""\
        class A:
            def __init__(self):
                self.experts = FusedMoEFactory(4, 2, 8, 16, shared_experts=s)
        class B:
            def __init__(self):
                self.experts = FusedMoEFactory(4, 2, 8, 16)
            def forward(self, x, r):
                return self.experts(x, r)
        """)
    text, count = rewrite(p19, before)
    assert text.startswith("from vllm.model_executor.layers.fused_moe import FusedMoE, SharedFusedMoE, GateLinear\n")
    # only the class whose layer has shared experts adds the pair
    assert "return self.experts(x, r)\n" in text and count == 3


def test_upstream_defaults_dropped_or_kept(rewrite):
    before = moe("4, 2, 8, 16, apply_routed_scale_to_output=False, activation='silu', reduce_results=False")
    text, _ = rewrite(p19, before)
    assert "FusedMoE(4, 2, 8, 16, activation='silu', reduce_results=False)" in text


@pytest.mark.parametrize(
    "source",
    [
        # own routers, other activations or scorings: not what the pin's FusedMoE computes
        moe("4, 2, 8, 16, gate=self.gate"),
        moe("4, 2, 8, 16, scoring_func='sigmoid', e_score_correction_bias=b"),
        moe("4, 2, 8, 16, activation='gelu'"),
        moe("4, 2, 8, 16, ckpt_names=('w1', 'w2', 'w3')"),
        moe("4, 2, 8, 16, 0"),  # intermediate_pad upstream, params_dtype in the pin
        moe("**kwargs"),
        # the layer called with what the pin's forward does not take
        moe("4, 2, 8, 16", "self.experts(hidden_states, router_logits, input_ids=ids)"),
        # shared experts not held by an attribute: its calls cannot be found
        IMPORT + "experts = FusedMoEFactory(4, 2, 8, 16, shared_experts=s)\n",
        # the loader names upstream's parameter layout by hand
        moe("4, 2, 8, 16") + 'MAPPING = [(".experts.routed_experts.w13_weight", ".gate_proj", "w1")]\n',
        IMPORT + "factory = FusedMoEFactory\n",
        "from somewhere import FusedMoEFactory\nx = FusedMoEFactory(4, 2, 8, 16)\n",
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p19, source) == (source, 0)


def test_idempotent(rewrite):
    once, _ = rewrite(p19, moe("4, 2, 8, 16, shared_experts=s"))
    assert rewrite(p19, once) == (once, 0)


def test_relevance():
    assert p19.relevant(IMPORT, patch_context())
    assert not p19.relevant("import torch\n", patch_context())
