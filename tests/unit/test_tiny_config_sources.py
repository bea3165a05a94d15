"""Where a tiny model's config comes from (tiny/sources.py, remote_code.py, infer.py), host side:
--tiny-from's bad inputs, a newer transformers' config module shipped as a checkpoint's code, and
a config inferred from a model's code (synthetic sources; the real runs are in tests/runtime/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.report import markdown
from pytest_flmigrate.tiny import infer, qwen2_checkpoint, remote_code, shrink, sources


def test_tiny_from_a_folder_with_its_config(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    folder, text = sources.fetch(str(tmp_path))
    assert folder == tmp_path.resolve() and text == f"--tiny-from {tmp_path.resolve()} (its config.json and code)"


@pytest.mark.parametrize(
    ("make", "line"),
    [
        (
            lambda root: (root / "ckpt").mkdir(),
            "--tiny-from {root}/ckpt: no config.json in {root}/ckpt; pass a checkpoint folder holding its "
            "config.json (and the *.py it names) or a hub repo id",
        ),
        (
            lambda root: (root / "ckpt").write_text("x"),
            "--tiny-from {root}/ckpt: a file, not a folder; pass a checkpoint folder or a hub repo id",
        ),
        (lambda root: None, "--tiny-from {root}/ckpt: no such folder, and not a hub repo id (OWNER/NAME)"),
    ],
)
def test_tiny_from_bad_folders_are_one_line(tmp_path, make, line):
    make(tmp_path)
    with pytest.raises(FlmigrateError) as caught:
        sources.fetch(str(tmp_path / "ckpt"))
    assert caught.value.message == line.format(root=tmp_path)


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"HF_HUB_OFFLINE": "1"}, "the hub cannot be reached (offline?) and the repo is not in the hub cache"),
        # nothing listens on this loopback port: the fetch fails at once, as with no network
        ({"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"}, None),
    ],
)
def test_tiny_from_a_repo_the_hub_cannot_give_is_one_line(tmp_path, monkeypatch, env, why):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import importlib

    import huggingface_hub.constants

    importlib.reload(huggingface_hub.constants)  # the hub reads its settings at import
    try:
        with pytest.raises(FlmigrateError) as caught:
            sources.fetch("someone/some-model")
    finally:
        monkeypatch.undo()
        importlib.reload(huggingface_hub.constants)
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("--tiny-from someone/some-model: cannot fetch its config from the hub (")
    assert message.endswith("); pass a local folder holding its config.json and *.py")
    if why:
        assert f"({why})" in message
    assert not (tmp_path / "hf" / "hub" / "models--someone--some-model" / "snapshots").exists()


NEWER = {
    "transformers/models/omni/configuration_omni.py": (
        "from ...configuration_utils import PreTrainedConfig\n"
        "from ..qwen3.configuration_qwen3 import Qwen3Config\n"
        "from ..omni_text.configuration_omni_text import OmniTextConfig\n"
        "from .helpers import thing\n\n\n"
        "class OmniConfig(PreTrainedConfig):\n    model_type = 'omni'\n"
    ),
    "transformers/models/omni_text/configuration_omni_text.py": (
        "from ...configuration_utils import PreTrainedConfig\n\n\n"
        "class OmniTextConfig(PreTrainedConfig):\n    model_type = 'omni_text'\n"
    ),
}


def test_a_newer_transformers_config_ships_with_the_config_modules_upstream_lacks(tmp_path):
    for relative, text in NEWER.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    upstream = {"transformers.configuration_utils", "transformers.models.qwen3.configuration_qwen3"}
    files = remote_code.config_code(tmp_path, "transformers.models.omni.configuration_omni", upstream.__contains__)
    assert sorted(files) == ["configuration_omni.py", "configuration_omni_text.py"]
    assert files["configuration_omni.py"].splitlines()[:4] == [
        "from transformers.configuration_utils import PreTrainedConfig",
        "from transformers.models.qwen3.configuration_qwen3 import Qwen3Config",
        "from .configuration_omni_text import OmniTextConfig",
        "from transformers.models.omni.helpers import thing",
    ]
    assert files["configuration_omni_text.py"].startswith("from transformers.configuration_utils import")
    config = json.loads(
        remote_code.config_json("omni", "transformers.models.omni.configuration_omni", "OmniConfig", "OmniModel")
    )
    assert config == {
        "architectures": ["OmniModel"],
        "auto_map": {"AutoConfig": "configuration_omni.OmniConfig"},
        "model_type": "omni",
    }


def test_a_source_folder_is_written_whole_and_its_digest_names_the_tiny_model(tmp_path):
    folder = sources.write_folder("x", {"config.json": "{}", "configuration_x.py": "A = 1\n"}, cache=tmp_path)
    again = sources.write_folder("x", {"config.json": "{}", "configuration_x.py": "A = 1\n"}, cache=tmp_path)
    assert folder == again and sorted(p.name for p in folder.iterdir()) == ["config.json", "configuration_x.py"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]
    source = sources.ConfigSource(sources.NEWER, "t", folder=folder)
    assert source.tag().startswith("-newer-transformers-") and source.args()[:2] == ["--config-dir", str(folder)]
    changed = sources.write_folder("x", {"config.json": "{}", "configuration_x.py": "A = 2\n"}, cache=tmp_path)
    assert changed != folder


MODEL_CODE = """
from vllm.config.multimodal import MultiModalDummyOptions


class StepModel(nn.Module):
    def __init__(self, *, vllm_config, prefix=""):
        config = vllm_config.model_config.hf_config
        self.embed = VocabParallelEmbedding(config.vocab_size, config.hidden_size)
        self.layers = [Layer(config) for _ in range(config.num_hidden_layers)]
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.window = getattr(config, "attention_window", 64)
        self.text = config.get_text_config()
        if hasattr(config, "sliding_window"):
            pass

class Layer(nn.Module):
    def __init__(self, config):
        self.heads = config.num_attention_heads
        self.kv = getattr(config, "num_key_value_heads")
        self.act = self.config.hidden_act
        self.routing = config.router_temperature
        self.vision = config.vision_config.patch_size
        self.image = config.image_token_id
"""


def test_the_fields_a_models_code_reads_from_its_config():
    reads = infer.config_reads([MODEL_CODE])
    assert reads.required == {
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "rms_norm_eps",
        "num_attention_heads",
        "num_key_value_heads",
        "hidden_act",
        "router_temperature",
        "vision_config",
        "image_token_id",
    }
    assert reads.defaults["attention_window"] == 64 and "sliding_window" in reads.defaults
    assert "get_text_config" not in reads.required  # a method, not a field
    assert reads.nested == {"vision_config": {"patch_size"}}


def test_a_field_the_code_sets_on_its_config_is_not_read_from_one():
    # an EAGLE-3 draft (llama_eagle3) stores its target's layer count in its own config
    code = "class Draft:\n    def __init__(self, config):\n        self.config.target_layer_count = 2\n        n = self.config.target_layer_count\n"
    reads = infer.config_reads([code])
    assert reads.required == set() and reads.written == {"target_layer_count"}


def test_an_inferred_config_values_fields_by_role_and_names_those_it_cannot():
    reads = infer.config_reads([MODEL_CODE])
    files, missing, *_ = infer.inferred_config(
        "step", "StepForCausalLM", reads, None, "vllm.model_executor.models.step"
    )
    assert missing == ["router_temperature", "vision_config.patch_size"]
    config = json.loads(files["config.json"])
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (
        shrink.HIDDEN,
        shrink.NUM_LAYERS,
        shrink.HEADS,
    )
    assert (config["rms_norm_eps"], config["hidden_act"], config["attention_window"]) == (1e-6, "silu", 64)
    assert config["image_token_id"] == qwen2_checkpoint.VOCAB_SIZE - 1  # a free id inside the tiny vocab
    assert config["auto_map"] == {"AutoConfig": "configuration_flmigrate_inferred.InferredConfig"}
    assert config["model_type"] == "step" and config["architectures"] == ["StepForCausalLM"]
    assert config["vocab_size"] == qwen2_checkpoint.VOCAB_SIZE  # PretrainedConfig has none of its own
    assert "from transformers import PretrainedConfig as Base" in files[infer.CODE_FILE]


def test_a_base_config_defines_what_it_has_and_the_rest_is_inferred():
    reads = infer.config_reads([MODEL_CODE.replace("config.vision_config.patch_size", "0")])
    base = infer.Base(
        "transformers.models.llama.configuration_llama",
        "LlamaConfig",
        frozenset({"hidden_size", "num_hidden_layers", "rms_norm_eps", "hidden_act", "router_temperature"}),
        "LlamaConfig (llama's)",
    )
    files, missing, *_ = infer.inferred_config("step", "StepForCausalLM", reads, base, "m")
    assert missing == []
    config = json.loads(files["config.json"])
    assert "hidden_size" not in config and config["num_key_value_heads"] == shrink.KV_HEADS
    assert "from transformers.models.llama.configuration_llama import LlamaConfig as Base" in files[infer.CODE_FILE]


def test_the_report_says_where_the_tiny_config_came_from_and_when_it_was_inferred():
    tiny = {
        "arch": "StepForCausalLM",
        "config_source": {"kind": "inferred", "text": "inferred from upstream vLLM's m (9 fields read; base X)"},
        "weights": "synthesized",
        "weights_from": "vllm.model_executor.models.step.StepForCausalLM (upstream vLLM)",
        "reason": "",
    }
    [line] = markdown._tiny_lines(tiny)
    assert line.startswith("- Tiny model: StepForCausalLM, config from inferred from upstream vLLM's m")
    assert "(inferred: a guess from the model's code, not a real checkpoint's config)" in line
    assert line.endswith("; weights from vllm.model_executor.models.step.StepForCausalLM (upstream vLLM)")


def test_tiny_from_without_tiny_is_refused(tmp_path):
    from pytest_flmigrate.settings import resolve

    plugin = Path(__file__).resolve().parents[2] / "examples" / "plugin-fl-mini"
    with pytest.raises(FlmigrateError, match=r"^--tiny-from ckpt: only used with --tiny; pass both$"):
        resolve({"plugin_dir": str(plugin), "tiny_from": "ckpt"}, tmp_path)


def test_sizes_are_known_by_the_end_of_their_name_and_schedules_cover_every_layer():
    reads = infer.config_reads(
        ["def f(config):\n    return config.mm_hidden_size, config.swa_num_key_value_heads, config.decoder_sparse_step"]
    )
    files, missing, *_ = infer.inferred_config("m", "MForCausalLM", reads, None, "m")
    config = json.loads(files["config.json"])
    assert missing == []
    assert (config["mm_hidden_size"], config["swa_num_key_value_heads"], config["decoder_sparse_step"]) == (
        shrink.HIDDEN,
        shrink.KV_HEADS,
        1,
    )


def test_a_validation_error_is_said_by_the_line_that_says_what_is_wrong():
    from pytest_flmigrate.tiny import vllm_weights

    class ValidationError(Exception):
        pass

    error = ValidationError(
        "1 validation error for ModelConfig\n  Value error, This model does not support `--runner generate`. "
        "[type=value_error, input_value=...]\n    For further information visit https://errors.pydantic.dev"
    )
    assert vllm_weights.first_line(error) == (
        "ValidationError: 1 validation error for ModelConfig: Value error, This model does not support "
        "`--runner generate`."
    )
    assert vllm_weights.first_line(KeyError("full_attention")) == "KeyError: 'full_attention'"


def test_fields_the_code_reads_without_a_default_are_filled_where_the_config_lacks_them():
    from pytest_flmigrate.tiny import synthesize

    fills = infer.fills_of(
        infer.config_reads(
            [
                "def f(config):\n"
                "    return config.hidden_size, config.expert_count, config.text_config.hidden_act,\n"
                "    getattr(config, 'rms_norm_eps', 1e-5)\n"
            ]
        )
    )
    assert fills["hidden_size"]["value"] == shrink.HIDDEN and fills["text_config.hidden_act"]["value"] == "silu"
    assert fills["rms_norm_eps"]["absent"] is False  # a default stands where the field is absent
    assert "expert_count" not in fills  # stored, never used: nothing values it

    class Config:
        def __init__(self, **values):
            self.__dict__.update(values)

        def to_dict(self):
            return dict(self.__dict__)

        @property
        def hidden_size(self):  # an alias of the text config's: present, never overwritten
            return self.text_config.width

    config = Config(text_config=Config(width=64))
    assert synthesize.fill_missing(config, fills) == ["text_config.hidden_act='silu' (its role)"]
    assert config.text_config.hidden_act == "silu" and config.hidden_size == 64


def test_a_tiny_config_carries_the_transformers_4_rope_spelling_beside_rope_parameters(tmp_path):
    """transformers 5 saves ``rope_parameters`` alone; a pin's migrated code may read
    ``config.rope_scaling`` (param2moe at 0.13.0), which a config of no class (inferred, remote code)
    then lacks. Per-layer-type rope parameters have no transformers 4 spelling and stay alone."""
    from pytest_flmigrate.tiny import synthesize

    rope = {"rope_type": "yarn", "rope_theta": 500000.0, "factor": 4.0}
    per_layer = {"full_attention": {"rope_type": "default", "rope_theta": 1e6}}
    path = tmp_path / "config.json"
    data = {
        "rope_parameters": rope,
        "text_config": {"rope_parameters": rope},
        "vision_config": {"rope_parameters": None},
    }
    path.write_text(json.dumps({**data, "audio_config": {"rope_parameters": per_layer}}))
    synthesize.with_legacy_rope(path)
    saved = json.loads(path.read_text())
    for config in (saved, saved["text_config"]):
        assert config["rope_scaling"] == {"rope_type": "yarn", "factor": 4.0} and config["rope_theta"] == 500000.0
        assert config["rope_parameters"] == rope
    assert saved["audio_config"] == {"rope_parameters": per_layer}
    assert saved["vision_config"] == {"rope_parameters": None, "rope_scaling": None}
    kept = {"rope_parameters": rope, "rope_scaling": None}
    path.write_text(json.dumps(kept))
    synthesize.with_legacy_rope(path)
    assert json.loads(path.read_text()) == kept  # a config that spells it already is left as it is


def test_a_position_table_is_sized_as_one_not_as_a_count():
    """An encoder's ``max_source_positions`` used as a count would be 4: vLLM derives the longest
    sequence from it and refuses a --max-model-len above it."""
    fills = infer.fills_of(
        infer.config_reads(
            ["def f(config):\n    return range(config.max_source_positions), config.max_target_positions * 2"]
        )
    )
    assert fills["max_source_positions"]["value"] == fills["max_target_positions"]["value"] == shrink.MAX_POSITIONS


def test_a_field_the_class_drops_on_loading_that_upstream_reads_without_a_default_refuses_the_source():
    """transformers 5 moves ``rope_theta`` into ``rope_parameters`` when a config loads: code reading
    ``config.rope_theta`` was written for another config, so the class is no source for it (the
    next is tried); a sub-config that comes back a dict, a copy on the text config, or a field read
    with a default are not."""
    from pytest_flmigrate.tiny import synthesize

    def fill(absent=True, config=False):
        return {"value": 1, "why": "its role", "absent": absent, "none": False, "config": config}

    fills = {"rope_theta": fill(), "vision_config": fill(config=True), "hidden_act": fill(), "eps": fill(absent=False)}
    lost = synthesize.LOST.format(cls="XConfig")
    filled = [
        f"rope_theta=10000.0 (its role{lost})",
        f"vision_config={{}} (a sub-config{lost})",
        "hidden_act='silu' (its role)",
        f"text_config.hidden_act='silu' (its role{lost})",
        f"eps=1e-06 (its role{lost})",
    ]
    assert synthesize.needed_lost(filled, fills) == ["rope_theta"]

    class XConfig:
        def __init__(self, **values):
            values.pop("rope_theta", None)  # kept inside rope_parameters, as transformers 5 does
            self.__dict__.update({"rope_parameters": {"rope_theta": 1e6}, **values})

        @classmethod
        def from_dict(cls, data):
            return cls(**data)

        def to_dict(self):
            return dict(self.__dict__)

    reads = infer.config_reads(["def f(config):\n    return config.rope_theta"])
    with pytest.raises(synthesize.Rejected, match=r"XConfig does not keep rope_theta when it loads its config.json"):
        synthesize.tiny_config(XConfig, "XForCausalLM", {"hidden_size": 4096}, infer.fills_of(reads), sources.NEWER)
    # the last source, inferred, is kept: no other follows it (the record marks the field lost)
    _, filled = synthesize.tiny_config(XConfig, "X", {"hidden_size": 4096}, infer.fills_of(reads), sources.INFERRED)
    assert filled == [f"rope_theta=10000.0 (its role{synthesize.LOST.format(cls='XConfig')})"]
    assert set(synthesize.FOLLOWED) == {sources.UPSTREAM, sources.NEWER}
