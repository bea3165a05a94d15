import pytest

from pytest_flmigrate.autofix import planner
from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import CATALOG
from pytest_flmigrate.patches import p35_prefix_lm_attention as p35
from tests.fixtures.trees import write

PACKAGE = "vllm.model_executor.layers.attention"
PORT = "from vllm_fl.compat.prefix_lm_attention import PrefillPrefixLMAttention\n"
USE = "attn = PrefillPrefixLMAttention(num_heads=4, head_size=64, scale=0.125, prefix='attn')\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (f"from {PACKAGE} import PrefillPrefixLMAttention\n" + USE, PORT + USE),
        (
            f"from {PACKAGE} import Attention, PrefillPrefixLMAttention\n" + USE,
            f"from {PACKAGE} import Attention\n" + PORT + USE,
        ),
        (
            f"from {PACKAGE}.prefill_prefix_lm_attention import PrefillPrefixLMAttention as PrefixLM\n",
            "from vllm_fl.compat.prefix_lm_attention import PrefillPrefixLMAttention as PrefixLM\n",
        ),
    ],
)
def test_imports_of_upstreams_class_point_at_the_port(rewrite, before, after):
    assert rewrite(p35, before, module_name="vllm.model_executor.models.hrm_text") == (after, 1)


@pytest.mark.parametrize(
    "source",
    [f"from {PACKAGE} import Attention\n", PORT + USE, "from elsewhere import PrefillPrefixLMAttention\n" + USE],
)
def test_left_alone(rewrite, source):
    assert rewrite(p35, source) == (source, 0)


def test_step_4_writes_the_port_for_what_is_rewritten_away():
    package = "vllm.model_executor.models"
    assert p35.rewritten_imports(f"from {PACKAGE} import PrefillPrefixLMAttention\n", package) == {
        (PACKAGE, "PrefillPrefixLMAttention"),
        (f"{PACKAGE}.prefill_prefix_lm_attention", "PrefillPrefixLMAttention"),
    }
    assert p35.SHIM == "prefix_lm_attention"


def pin(tmp_path, block_size: bool = True, has_class: bool = False):
    """A pin with the pieces the port builds on (vLLM 0.13's modules and signatures); its
    ``get_attn_backend`` takes a block size unless ``block_size`` is False."""
    size = "block_size, " if block_size else ""
    files = {
        "vllm/__init__.py": "",
        "vllm/logger.py": "def init_logger(name):\n    return name\n",
        "vllm/attention/__init__.py": "",
        "vllm/attention/backends/__init__.py": "",
        "vllm/attention/backends/abstract.py": "class AttentionType:\n    DECODER = 'decoder'\n",
        "vllm/attention/layer.py": (
            "class Attention:\n    def __init__(self, num_heads, head_size, scale, num_kv_heads=None, "
            "cache_config=None, prefix='', attn_type='decoder', attn_backend=None, **extra_impl_args): ...\n"
            "    def get_kv_cache_spec(self, vllm_config): ...\n"
        ),
        "vllm/attention/layers/__init__.py": "",
        "vllm/attention/layers/encoder_only_attention.py": (
            "def create_encoder_only_attention_backend(underlying_attn_backend):\n    return underlying_attn_backend\n"
        ),
        "vllm/attention/selector.py": (
            f"def get_attn_backend(head_size, dtype, kv_cache_dtype, {size}use_mla=False, attn_type=None): ...\n"
        ),
        "vllm/config/__init__.py": "class CacheConfig: ...\nclass VllmConfig: ...\n",
        "vllm/v1/__init__.py": "",
        "vllm/v1/kv_cache_interface.py": "class KVCacheSpec: ...\n",
    }
    if has_class:
        files["vllm/model_executor/__init__.py"] = ""
        files["vllm/model_executor/layers/__init__.py"] = ""
        files["vllm/model_executor/layers/attention/__init__.py"] = "class PrefillPrefixLMAttention: ...\n"
    write(tmp_path, files)
    return Resolver([index_directory(tmp_path, "vllm")])


def test_the_port_applies_where_the_pin_lacks_the_class_and_takes_its_calls(tmp_path):
    p = next(patch for patch in CATALOG if patch.id == "P35")
    pinned = pin(tmp_path / "pin")
    assert planner.shim_rejected(p35.SHIM, pinned) is None
    assert p.gap_at(pinned) is None and planner.for_pin((p,), pinned) == (p,)
    assert p.gap_at(pin(tmp_path / "has", has_class=True)) is not None


def test_the_port_is_rejected_where_the_pins_get_attn_backend_takes_no_block_size(tmp_path):
    p = next(patch for patch in CATALOG if patch.id == "P35")
    pinned = pin(tmp_path, block_size=False)
    why = planner.shim_rejected(p35.SHIM, pinned)
    assert why is not None and why.startswith("its shim vllm_fl.compat.prefix_lm_attention would fail at this pin")
    assert "get_attn_backend" in why
    assert planner.for_pin((p,), pinned) == ()


def test_a_subclass_is_refused_with_its_line_and_the_file_left_alone(rewrite):
    source = f"from {PACKAGE} import PrefillPrefixLMAttention\n\n\nclass Mine(PrefillPrefixLMAttention):\n    pass\n"
    refused = p35.refusal(source, "vllm.model_executor.models")
    assert refused is not None and str(refused) == (
        "line 4: PrefillPrefixLMAttention: subclassed; the port applies upstream's scheduling policy in "
        "get_kv_cache_spec"
    )
    assert p35.rewritten_imports(source, "vllm.model_executor.models") == set()
    assert rewrite(p35, source) == (source, 0)
