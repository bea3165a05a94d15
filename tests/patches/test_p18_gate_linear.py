import pytest

from pytest_flmigrate.patches import p18_gate_linear as p18
from tests.patches.conftest import patch_context

IMPORT = "from vllm.model_executor.layers.fused_moe import FusedMoE, GateLinear\n"
SHIM = "from vllm.model_executor.layers.fused_moe import FusedMoE\nfrom vllm_fl.compat.moe_runner import GateLinear\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            IMPORT + 'gate = GateLinear(hidden, experts, prefix="gate")\n',
            SHIM + 'gate = GateLinear(hidden, experts, prefix="gate")\n',
            id="calls-untouched",
        ),
        pytest.param(
            IMPORT + "gate = GateLinear(hidden, experts, False, torch.float32, force_fp32_compute=True)\n"
            "gate.set_out_dtype(torch.float32)\nclass Gate(GateLinear):\n    pass\n",
            SHIM + "gate = GateLinear(hidden, experts, False, torch.float32, force_fp32_compute=True)\n"
            "gate.set_out_dtype(torch.float32)\nclass Gate(GateLinear):\n    pass\n",
            id="every-upstream-use-the-shim-takes",
        ),
        pytest.param(
            "from vllm.model_executor.layers.fused_moe.router.gate_linear import GateLinear as G\n"
            "assert isinstance(m, G)\ng = G(1, 2)\n",
            "from vllm_fl.compat.moe_runner import GateLinear as G\nassert isinstance(m, G)\ng = G(1, 2)\n",
            id="defining-module-and-alias",
        ),
    ],
)
def test_the_import_points_at_the_shim(rewrite, before, after):
    assert rewrite(p18, before) == (after, 1)


def test_other_relative_imports_untouched(rewrite):
    source = "from ..layers.fused_moe import GateLinear\nfrom .utils import maybe_prefix\n"
    text, count = rewrite(p18, source, module_name="vllm.model_executor.models.olmoe")
    assert text == "from vllm_fl.compat.moe_runner import GateLinear\nfrom .utils import maybe_prefix\n"
    assert count == 1


@pytest.mark.parametrize(
    "source", ["from somewhere import GateLinear\ng = GateLinear(1, 2)\n", "# GateLinear\nimport torch\n"]
)
def test_left_alone(rewrite, source):
    assert rewrite(p18, source) == (source, 0)


def test_no_use_is_refused_and_the_shim_is_named():
    package = "vllm.model_executor.models"
    assert p18.refusal(IMPORT + "g = GateLinear(*args, **kwargs)\n", package) is None
    assert p18.rewritten_imports(IMPORT, package) == {(module, "GateLinear") for module in p18.API.modules}
    assert p18.SHIM == "moe_runner"


def test_relevance():
    assert p18.relevant(IMPORT, patch_context())
    assert not p18.relevant("import torch\n", patch_context())
