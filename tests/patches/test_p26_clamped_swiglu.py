import pytest

from pytest_flmigrate.patches import p26_clamped_swiglu as p26
from tests.patches.conftest import patch_context

ACTIVATION = "from vllm.model_executor.layers.activation import SiluAndMul, SwigluStepAndMul\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            ACTIVATION + "act = SwigluStepAndMul(limit=limit) if limit else SiluAndMul()\n",
            "from vllm.model_executor.layers.activation import SiluAndMul\n"
            "from vllm_fl.compat.clamped_swiglu import SwigluStepAndMul\n"
            "act = SwigluStepAndMul(limit=limit) if limit else SiluAndMul()\n",
            id="one-of-two-names",
        ),
        pytest.param(
            "from vllm.model_executor.layers.activation import SiluAndMulWithClamp as Clamp, SwigluStepAndMul\n",
            "from vllm_fl.compat.clamped_swiglu import SiluAndMulWithClamp as Clamp, SwigluStepAndMul\n",
            id="both-with-alias",
        ),
        pytest.param(
            "from ..layers.activation import SiluAndMulWithClamp\n",
            "from vllm_fl.compat.clamped_swiglu import SiluAndMulWithClamp\n",
            id="relative",
        ),
    ],
)
def test_the_imports_point_at_the_shim(rewrite, before, after):
    assert rewrite(p26, before) == (after, 1)


@pytest.mark.parametrize(
    "source",
    [
        "from vllm.model_executor.layers.activation import SiluAndMul\n",
        "from elsewhere import SwigluStepAndMul\n",
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p26, source) == (source, 0)


def test_no_use_is_refused_and_step_4_leaves_the_imports_to_it():
    package = "vllm.model_executor.models"
    assert p26.refusal(ACTIVATION + "act = SwigluStepAndMul(*args)\n", package) is None
    assert p26.rewritten_imports(ACTIVATION, package) == {("vllm.model_executor.layers.activation", "SwigluStepAndMul")}


def test_relevance():
    assert p26.relevant(ACTIVATION, patch_context())
    assert not p26.relevant("from x import SiluAndMul\n", patch_context())
