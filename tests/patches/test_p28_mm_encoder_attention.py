import pytest

from pytest_flmigrate.patches import p28_mm_encoder_attention as p28

LAYER = "vllm.model_executor.layers.attention.mm_encoder_attention"
PORT = "from vllm_fl.compat.mm_encoder_attention import MMEncoderAttention\n"
USE = "attn = MMEncoderAttention(16, 64, prefix='attn')\n"


@pytest.mark.parametrize(
    ("before", "after", "module"),
    [
        (f"from {LAYER} import MMEncoderAttention\n" + USE, PORT + USE, "vllm.model_executor.models.kimi_k25_vit"),
        (
            "from vllm.model_executor.layers.attention import Attention, MMEncoderAttention\n" + USE,
            "from vllm.model_executor.layers.attention import Attention\n" + PORT + USE,
            "vllm.model_executor.models.glm_ocr",
        ),
        (
            "from .mm_encoder_attention import MMEncoderAttention as EncoderAttention\n",
            "from vllm_fl.compat.mm_encoder_attention import MMEncoderAttention as EncoderAttention\n",
            "vllm.model_executor.layers.attention.other",
        ),
    ],
)
def test_imports_of_upstreams_class_point_at_the_port(rewrite, before, after, module):
    assert rewrite(p28, before, module_name=module) == (after, 1)


@pytest.mark.parametrize(
    "source",
    [
        "from vllm.attention.layers.mm_encoder_attention import MMEncoderAttention\n" + USE,  # the pin's own
        f"from {LAYER} import maybe_get_vit_flash_attn_backend\n",
        PORT + USE,
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p28, source) == (source, 0)


def test_step_4_writes_the_port_for_what_is_rewritten_away():
    package = "vllm.model_executor.models"
    assert p28.rewritten_imports(f"from {LAYER} import MMEncoderAttention\n", package) == {
        (LAYER, "MMEncoderAttention"),
        ("vllm.model_executor.layers.attention", "MMEncoderAttention"),
    }
    assert p28.rewritten_imports("from elsewhere import MMEncoderAttention\n", package) == set()
    assert p28.SHIM == "mm_encoder_attention"
