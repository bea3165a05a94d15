import pytest

from pytest_flmigrate.patches import p18_gate_linear as p18
from tests.patches.conftest import patch_context

IMPORT = "from vllm.model_executor.layers.fused_moe import FusedMoE, GateLinear\n"
PINNED = (
    "from vllm.model_executor.layers.fused_moe import FusedMoE\n"
    "from vllm.model_executor.layers.linear import ReplicatedLinear as GateLinear\n"
)


@pytest.mark.parametrize(
    ("before", "after", "count"),
    [
        pytest.param(
            IMPORT + 'gate = GateLinear(hidden, experts, prefix="gate")\n',
            PINNED + 'gate = GateLinear(hidden, experts, prefix="gate", bias=False)\n',
            2,
            id="bias-default-spelled-out",
        ),
        pytest.param(
            IMPORT + "gate = GateLinear(\n    hidden,\n    experts,\n    params_dtype=dtype,\n)\n",
            PINNED + "gate = GateLinear(\n    hidden,\n    experts,\n    params_dtype=dtype,\n    bias=False,\n)\n",
            2,
            id="one-argument-per-line-kept",
        ),
        pytest.param(
            IMPORT + "gate = GateLinear(hidden, experts, bias=True, return_bias=False)\n",
            PINNED + "gate = GateLinear(hidden, experts, bias=True, return_bias=False)\n",
            1,
            id="explicit-bias-kept",
        ),
        pytest.param(
            IMPORT + "gate = GateLinear(hidden, experts, True)\n",
            PINNED + "gate = GateLinear(hidden, experts, True)\n",
            1,
            id="positional-bias-kept",
        ),
        pytest.param(
            IMPORT + "gate = GateLinear(hidden, experts, out_dtype=None, force_fp32_compute=False)\n",
            PINNED + "gate = GateLinear(hidden, experts, bias=False)\n",
            2,
            id="upstream-defaults-dropped",
        ),
        pytest.param(
            "from vllm.model_executor.layers.fused_moe.router.gate_linear import GateLinear as G\n"
            "assert isinstance(m, G)\ng = G(1, 2)\n",
            "from vllm.model_executor.layers.linear import ReplicatedLinear as G\n"
            "assert isinstance(m, G)\ng = G(1, 2, bias=False)\n",
            2,
            id="defining-module-and-alias",
        ),
    ],
)
def test_rewrites(rewrite, before, after, count):
    assert rewrite(p18, before) == (after, count)


@pytest.mark.parametrize(
    "source",
    [
        # the logits' dtype would change: the pin has no such cast
        IMPORT + "a = GateLinear(1, 2)\nb = GateLinear(1, 2, out_dtype=torch.float32)\n",
        IMPORT + "g = GateLinear(1, 2, force_fp32_compute=True)\n",
        IMPORT + "g = GateLinear(1, 2, False, torch.float32)\n",  # 4th positional: out_dtype upstream
        IMPORT + "g = GateLinear(*args)\n",
        IMPORT + "class RouterGate(GateLinear): ...\n",
        IMPORT + "g = GateLinear(1, 2)\ng.set_out_dtype(torch.float32)\n",
        IMPORT + "g = GateLinear(1, 2)\nif g.out_dtype is None: ...\n",
        # another module's GateLinear, or none imported
        "from somewhere import GateLinear\ng = GateLinear(1, 2)\n",
        "g = GateLinear(1, 2)\n",
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p18, source) == (source, 0)


def test_other_relative_imports_untouched(rewrite):
    source = "from .utils import maybe_prefix\n" + IMPORT + "g = GateLinear(1, 2)\n"
    assert rewrite(p18, source)[0].startswith("from .utils import maybe_prefix\n" + PINNED)


def test_idempotent(rewrite):
    once, _ = rewrite(p18, IMPORT + "g = GateLinear(1, 2)\n")
    assert rewrite(p18, once) == (once, 0)


def test_relevance():
    assert p18.relevant(IMPORT, patch_context())
    assert not p18.relevant("import torch\n", patch_context())
