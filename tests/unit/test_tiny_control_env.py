"""--tiny's control served on the pin's code path (tiny/control_env.py) where upstream's table of
model types has the migrated model's type and the pin's lacks it, read from synthetic vLLM trees
laid out as 0.13 (the table in ``config/model.py``) and 0.32 (the model config delegates to
``transformers_utils/model_arch_config_convertor.py``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_flmigrate.index.registries import mla_model_types
from pytest_flmigrate.tiny.control_env import aligned, text_model_type

PIN_MODEL_CONFIG = """
class ModelConfig:
    @property
    def is_deepseek_mla(self) -> bool:
        if not hasattr(self.hf_text_config, "model_type"):
            return False
        elif self.hf_text_config.model_type in ("deepseek_v2", "deepseek_v3"):
            return self.hf_text_config.kv_lora_rank is not None
        elif self.hf_text_config.model_type == "eagle":
            return self.hf_text_config.model.model_type in ("deepseek_v2", "eagle_only")
        return False
"""
UPSTREAM_MODEL_CONFIG = """
class ModelConfig:
    @property
    def is_deepseek_mla(self) -> bool:
        return self.model_arch_config.is_deepseek_mla
"""
UPSTREAM_CONVERTOR = """
class ModelArchConfigConvertorBase:
    def is_deepseek_mla(self) -> bool:
        if self.hf_text_config.model_type in ("axk1", "deepseek_v2", "deepseek_v3", "glm4_moe_lite"):
            return getattr(self.hf_text_config, "kv_lora_rank", None) is not None
        return False
"""


def vllm_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def pin(tmp_path: Path) -> Path:
    return vllm_tree(tmp_path / "pin", {"config/model.py": PIN_MODEL_CONFIG})


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    return vllm_tree(
        tmp_path / "upstream",
        {
            "config/model.py": UPSTREAM_MODEL_CONFIG,
            "transformers_utils/model_arch_config_convertor.py": UPSTREAM_CONVERTOR,
        },
    )


def test_the_mla_table_is_read_where_each_tree_keeps_it(pin, upstream, tmp_path):
    assert mla_model_types(pin) == {"deepseek_v2", "deepseek_v3"}  # an EAGLE draft's inner test left out
    assert mla_model_types(upstream) == {"axk1", "deepseek_v2", "deepseek_v3", "glm4_moe_lite"}
    assert mla_model_types(tmp_path / "no-tree") == frozenset()


def test_a_type_the_pins_table_lacks_serves_the_control_without_mla(pin, upstream):
    result = aligned({"model_type": "axk1"}, upstream, pin, "0.13.0")
    assert result.env == {"VLLM_MLA_DISABLE": "1"}
    assert result.notes == (
        "vLLM 0.13.0 serves model type axk1 without multi-head latent attention (its table lacks the type): "
        "the control runs upstream's same path (VLLM_MLA_DISABLE=1)",
    )


@pytest.mark.parametrize("config", [{"model_type": "deepseek_v3"}, {"model_type": "llama"}, {}])
def test_a_type_both_tables_agree_on_changes_nothing(pin, upstream, config):
    assert aligned(config, upstream, pin, "0.13.0").env == {}


def test_the_type_tested_is_the_text_configs():
    assert text_model_type({"model_type": "axk1_vl", "text_config": {"model_type": "axk1"}}) == "axk1"
    assert text_model_type({"model_type": "axk1", "text_config": None}) == "axk1"
