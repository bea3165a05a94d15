"""--tiny for MTP heads (tiny/mtp.py): recognition, the layer-count fields and where they are set,
a head without a target (the pair itself: tests/unit/test_runtime_tiny_model.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index.registries import model_registry
from pytest_flmigrate.runtime_run import RuntimeRun
from pytest_flmigrate.tiny import infer, mtp, sources
from pytest_flmigrate.tiny.checkpoints import TinyModel
from pytest_flmigrate.tiny.sources import ConfigSource
from pytest_flmigrate.tiny.synthesize import set_layer_counts
from tests.fixtures.trees import write
from tests.unit.test_runtime_tiny_model import upstream_class

REGISTRY = """
_TEXT_GENERATION_MODELS = {
    "Glm4MoeLiteForCausalLM": ("glm4_moe_lite", "Glm4MoeLiteForCausalLM"),
}
_SPECULATIVE_DECODING_MODELS = {
    "Glm4MoeLiteMTPModel": ("glm4_moe_lite_mtp", "Glm4MoeLiteMTP"),
    "Qwen3_5MTP": ("qwen3_5_mtp", "Qwen3_5MTP"),
    "EagleCohereForCausalLM": ("cohere_eagle", "EagleCohereForCausalLM"),
    "ExtractHiddenStatesModel": ("extract_hidden_states", "ExtractHiddenStatesModel"),
}
"""
#: shaped like upstream vLLM 0.32.0's ``SpeculativeConfig.hf_config_override``
SPECULATIVE = """
class SpeculativeConfig:
    @staticmethod
    def hf_config_override(hf_config):
        if hf_config.architectures[0] == "Glm4MoeLiteForCausalLM":
            n_predict = getattr(hf_config, "num_nextn_predict_layers", None)
            hf_config.update({"n_predict": n_predict, "architectures": ["Glm4MoeLiteMTPModel"]})
        if hf_config.model_type == "qwen3_5":
            n_predict = getattr(hf_config.text_config, "mtp_num_hidden_layers", None)
        if hf_config.architectures[0] == "MiMoV2FlashForCausalLM":
            n_predict = _MIMO_V2_FLASH_NUM_MTP_LAYERS
        if (arch := hf_config.architectures[0]) in ("MiMoV2ProForCausalLM",):
            mtp_arch_maps = {"MiMoV2ProForCausalLM": "MiMoV2MTPModel"}
            hf_config.update({"architectures": [mtp_arch_maps[arch]]})
        if "exaone4_5" in hf_config.model_type:
            hf_config.model_type = "exaone4_5_mtp"
        if hf_config.model_type == "exaone4_5_mtp":
            hf_config.update({"n_predict": 1, "architectures": ["Exaone4_5_MTP"]})
        return hf_config
"""


def test_heads_are_the_speculative_tables_mtp_architectures(tmp_path):
    archs = {
        arch.name: arch
        for arch in model_registry(write(tmp_path / "vllm", {"model_executor/models/registry.py": REGISTRY}))
    }
    assert {name for name, arch in archs.items() if mtp.is_head(arch)} == {"Glm4MoeLiteMTPModel", "Qwen3_5MTP"}
    assert mtp.find_head([archs["Glm4MoeLiteMTPModel"]]) is archs["Glm4MoeLiteMTPModel"]
    # a unit with a model of its own beside a head serves that model
    assert mtp.find_head([archs["Glm4MoeLiteForCausalLM"], archs["Glm4MoeLiteMTPModel"]]) is None


def test_the_targets_of_each_head_are_read_from_upstreams_override(tmp_path):
    targets = mtp.override_targets(write(tmp_path, {mtp.LAYER_COUNT_FILE: SPECULATIVE}))
    assert targets["Glm4MoeLiteMTPModel"] == {"Glm4MoeLiteForCausalLM"}
    assert targets["Exaone4_5_MTP"] == {"exaone4_5_mtp", "exaone4_5"}  # through the model type renamed
    assert targets["MiMoV2MTPModel"] >= {"MiMoV2ProForCausalLM"}  # a dict mapping architectures to heads
    assert mtp.override_targets(tmp_path / "elsewhere") == {}


def test_the_layer_count_fields_are_read_from_upstreams_override(tmp_path):
    root = write(tmp_path, {mtp.LAYER_COUNT_FILE: SPECULATIVE})
    assert mtp.layer_fields(root) == ("mtp_num_hidden_layers", "num_nextn_predict_layers")
    assert mtp.layer_fields(tmp_path / "elsewhere") == ()


class Config:
    def __init__(self, **values):
        vars(self).update(values)

    def to_dict(self):
        return dict(vars(self))


def test_the_head_gets_one_layer_where_its_target_counts_them():
    text = Config(mtp_num_hidden_layers=0)
    config = Config(text_config=text, hidden_size=8)
    changed = set_layer_counts(config, ["mtp_num_hidden_layers", "num_nextn_predict_layers"])
    # where a sub-config has the field, there; where none has it, at the top
    assert changed == ["num_nextn_predict_layers", "text_config.mtp_num_hidden_layers"]
    assert text.mtp_num_hidden_layers == 1 and config.num_nextn_predict_layers == 1
    assert not hasattr(config, "mtp_num_hidden_layers")


def test_a_target_source_carries_the_fields_to_synthesize_and_its_own_cache_name():
    source = ConfigSource(sources.UPSTREAM, "t", "m", "C", mtp_fields=("a", "b"))
    assert source.args()[-2:] == ["--mtp-fields", "a,b"]
    assert source.tag() == "-mtp" and upstream_class("C").tag() == ""


def unit_run(name: str, architectures: list[str], model_type: str) -> SimpleNamespace:
    archs = [SimpleNamespace(name=a, table="_TEXT_GENERATION_MODELS") for a in architectures]
    unit = SimpleNamespace(architectures=archs, config=SimpleNamespace(model_type=model_type))
    return SimpleNamespace(name=name, unit=lambda: unit)


def head_run(tmp_path: Path, monkeypatch, imported: list[str], units: dict[str, SimpleNamespace]) -> SimpleNamespace:
    monkeypatch.setattr(infer, "imported_models", lambda run, index: iter(imported))
    root = write(tmp_path, {mtp.LAYER_COUNT_FILE: SPECULATIVE})

    def run_for(name: str) -> SimpleNamespace:
        if name not in units:
            raise FlmigrateError(f"no model {name}")
        return units[name]

    workspace = SimpleNamespace(
        upstream=lambda: SimpleNamespace(root=root), upstream_index=lambda: None, run_for=run_for
    )
    return SimpleNamespace(name="exaone4_5_mtp", workspace=workspace)


def test_the_target_is_the_model_upstream_turns_into_the_head_not_the_first_imported(tmp_path, monkeypatch):
    units = {
        "exaone4": unit_run("exaone4", ["Exaone4ForCausalLM"], "exaone4"),
        "exaone4_5": unit_run("exaone4_5", ["Exaone4_5_ForConditionalGeneration"], "exaone4_5"),
    }
    run = head_run(tmp_path, monkeypatch, ["exaone4"], units)
    assert mtp.target_of(run, "Exaone4_5_MTP") is units["exaone4_5"]
    # a head upstream's override does not name: the first model imported that is no head
    assert mtp.target_of(run, "Gemma4MTPModel") is units["exaone4"]


def test_a_head_without_its_target_is_one_line(tmp_path, monkeypatch):
    run = head_run(tmp_path, monkeypatch, [], {})
    with pytest.raises(FlmigrateError) as caught:
        mtp.target_of(run, "Exaone4_5_MTP")
    assert caught.value.message == (
        "--tiny: the MTP head Exaone4_5_MTP serves inside its target model (upstream serves it inside "
        "exaone4_5, exaone4_5_mtp), and exaone4_5 is not that target"
    )


def pinned_run(tmp_path: Path, pinned_architectures: set[str], registration: str) -> RuntimeRun:
    pair = {"method": "mtp", "path": ".", "target": "Glm4MoeLiteForCausalLM", "target_model": "glm4_moe_lite"}
    tiny = TinyModel(tmp_path, "Glm4MoeLiteMTPModel", False, mtp.DUMMY_REASON, 7, draft=pair)
    pinned = SimpleNamespace(architectures=dict.fromkeys(pinned_architectures), version="0.13.0")
    run = SimpleNamespace(
        settings=SimpleNamespace(tiny=True),
        workspace=SimpleNamespace(pinned=lambda: pinned),
        registration=lambda: SimpleNamespace(source=registration),
    )
    runtime = RuntimeRun(run)  # type: ignore[arg-type]
    runtime.tiny = lambda: tiny  # type: ignore[method-assign]
    return runtime


def test_the_pinned_server_needs_the_heads_target_from_the_pin_or_the_plugin(tmp_path):
    pinned_run(tmp_path, {"Glm4MoeLiteForCausalLM"}, "").need_mtp_target()
    registered = (
        "def register_model():\n    from vllm import ModelRegistry\n"
        '    ModelRegistry.register_model("Glm4MoeLiteForCausalLM", "vllm_fl.models.glm4_moe_lite:Glm4MoeLiteForCausalLM")\n'
    )
    pinned_run(tmp_path, set(), registered).need_mtp_target()
    with pytest.raises(FlmigrateError) as caught:
        pinned_run(tmp_path, set(), "def register_model():\n    pass\n").need_mtp_target()
    assert caught.value.message == (
        "the MTP head Glm4MoeLiteMTPModel serves inside Glm4MoeLiteForCausalLM, which neither vLLM 0.13.0 "
        "nor the plugin registers: migrate it first (pytest --model glm4_moe_lite)"
    )
