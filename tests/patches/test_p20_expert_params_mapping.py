import pytest

from pytest_flmigrate.patches import p20_expert_params_mapping as p20
from tests.patches.conftest import patch_context

IMPORT = "from vllm.model_executor.layers.fused_moe import fused_moe_make_expert_params_mapping\n"
PINNED = "from vllm.model_executor.layers.fused_moe import FusedMoE\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            IMPORT + 'm = fused_moe_make_expert_params_mapping(self, ckpt_gate_proj_name="gate_proj", '
            'ckpt_down_proj_name="down_proj", ckpt_up_proj_name="up_proj", num_experts=n)\n',
            PINNED + 'm = FusedMoE.make_expert_params_mapping(ckpt_gate_proj_name="gate_proj", '
            'ckpt_down_proj_name="down_proj", ckpt_up_proj_name="up_proj", num_experts=n)\n',
            id="keywords",
        ),
        pytest.param(
            IMPORT
            + "m = fused_moe_make_expert_params_mapping(\n    self,\n    'w1',\n    'w2',\n    'w3',\n    n,\n    r,\n)\n",
            PINNED + "m = FusedMoE.make_expert_params_mapping(\n    'w1',\n    'w2',\n    'w3',\n    n,\n    r,\n)\n",
            id="positional-one-per-line",
        ),
        pytest.param(
            "from vllm.model_executor.layers.fused_moe import FusedMoE, fused_moe_make_expert_params_mapping\n"
            "m = fused_moe_make_expert_params_mapping(self, 'w1', 'w2', 'w3', n)\n",
            PINNED + "m = FusedMoE.make_expert_params_mapping('w1', 'w2', 'w3', n)\n",
            id="fused-moe-already-imported",
        ),
    ],
)
def test_rewrites(rewrite, before, after):
    assert rewrite(p20, before) == (after, 2)


@pytest.mark.parametrize(
    "source",
    [
        IMPORT + "m = fused_moe_make_expert_params_mapping(self, 'w1', 'w2', 'w3', n, routed_experts_prefix='')\n",
        IMPORT + "m = fused_moe_make_expert_params_mapping(self, 'w1', 'w2', None, n)\n",
        IMPORT + "m = fused_moe_make_expert_params_mapping(self, 'w1', 'w2', ckpt_up_proj_name=None, num_experts=n)\n",
        IMPORT + "m = fused_moe_make_expert_params_mapping(ckpt_gate_proj_name='w1')\n",  # no model argument
        IMPORT + "m = fused_moe_make_expert_params_mapping(*args)\n",
        IMPORT + "make = fused_moe_make_expert_params_mapping\n",
        # the loader names upstream's runner by hand, not as the layout the pin flattens
        IMPORT + "m = fused_moe_make_expert_params_mapping(self, 'w1', 'w2', 'w3', n)\np = name + '.routed_experts'\n",
    ],
)
def test_refused_with_the_line(rewrite, source):
    found = p20.refusal(source, "vllm.model_executor.models")
    assert found is not None and found.line == len(source.splitlines()), found
    assert rewrite(p20, source) == (source, 0)


def test_not_imported_is_left_alone(rewrite):
    source = "from elsewhere import fused_moe_make_expert_params_mapping\nm = fused_moe_make_expert_params_mapping(self, 'a', 'b', 'c', 1)\n"
    assert p20.refusal(source, "vllm.model_executor.models") is None
    assert rewrite(p20, source) == (source, 0)


def test_strings_naming_the_runners_layout_name_the_pins(rewrite):
    source = (
        IMPORT
        + "m = fused_moe_make_expert_params_mapping(self, 'w1', 'w2', 'w3', n)\np = f'.experts.routed_experts.{base}'\n"
    )
    text, count = rewrite(p20, source)
    assert text == PINNED + "m = FusedMoE.make_expert_params_mapping('w1', 'w2', 'w3', n)\np = f'.experts.{base}'\n"
    assert count == 3


def test_other_statements_untouched(rewrite):
    source = "import torch\n" + IMPORT + "m = fused_moe_make_expert_params_mapping(self, 'w1', 'w2', 'w3', n)\n"
    assert rewrite(p20, source)[0].startswith("import torch\n" + PINNED)


def test_relevance():
    assert p20.relevant(IMPORT, patch_context())
    assert not p20.relevant("import torch\n", patch_context())
