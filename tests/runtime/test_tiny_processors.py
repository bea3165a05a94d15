"""--tiny's processors (tiny/processors.py) in the real upstream env: a multimodal model's tiny
checkpoint holds the processor its upstream code loads, loadable the way vLLM loads it, its sizes
those of the tiny config; a model whose processor cannot be made fails in one line and leaves
nothing in the tiny cache. Skips, naming the command, when the upstream env is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_flmigrate import envs
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.tiny import checkpoints, sources
from pytest_flmigrate.tiny.synthesize import STAMP
from tests.runtime.in_env import run_in_env

pytestmark = pytest.mark.runtime
VERSION = envs.expected_vllm(envs.upstream_env()) or ""


def upstream_class(module: str, name: str) -> sources.ConfigSource:
    return sources.ConfigSource(sources.UPSTREAM, f"upstream: {module}.{name}", module, name)


# vLLM's own loader (what a server's processing info calls first), then the sizes that must agree
_LOAD = """
import json, sys
from transformers import AutoConfig
from vllm.transformers_utils.processor import get_processor
path = sys.argv[1]
processor = get_processor(path)
config = AutoConfig.from_pretrained(path)
print(json.dumps({
    "processor": type(processor).__name__,
    "feature_extractor": type(processor.feature_extractor).__name__,
    "feature_size": processor.feature_extractor.feature_size,
    "num_mel_bins": config.audio_config.num_mel_bins,
}))
"""


def test_an_audio_model_gets_the_processor_its_upstream_code_loads(upstream_python, tmp_path):
    tiny = checkpoints.synthesize(
        str(upstream_python),
        "glmasr",
        VERSION,
        "GlmAsrForConditionalGeneration",
        upstream_class("transformers.models.glmasr.configuration_glmasr", "GlmAsrConfig"),
        cache=tmp_path,
        multimodal=True,
    )
    stamp = json.loads((tiny.path / STAMP).read_text())
    assert stamp["processor"]["classes"] == ["GlmAsrProcessor"]
    assert "processor_config.json" in stamp["processor"]["files"]
    assert set(stamp["processor"]["files"]) <= set(stamp["files"])  # hashed: part of the control's key
    found = run_in_env(
        upstream_python, "-c", _LOAD, str(tiny.path), label="processor", extra_env={"HF_HUB_OFFLINE": "1"}
    )
    loaded = json.loads(found.strip().splitlines()[-1])
    assert loaded["processor"] == "GlmAsrProcessor" and loaded["feature_extractor"] == "WhisperFeatureExtractor"
    assert loaded["feature_size"] == loaded["num_mel_bins"]


def test_a_model_whose_processor_cannot_be_made_fails_in_one_line_and_leaves_no_checkpoint(upstream_python, tmp_path):
    # moss_transcribe_diarize: upstream's processing info asks for AutoProcessor, whose class lives in
    # the checkpoints' own code (no class in vLLM or transformers for its model_type)
    arch = "MossTranscribeDiarizeForConditionalGeneration"
    with pytest.raises(FlmigrateError) as raised:
        checkpoints.synthesize(
            str(upstream_python),
            "moss_transcribe_diarize",
            VERSION,
            arch,
            upstream_class("vllm.transformers_utils.configs.moss_transcribe_diarize", "MossTranscribeDiarizeConfig"),
            cache=tmp_path,
            multimodal=True,
        )
    message = raised.value.message
    assert "\n" not in message
    assert message.startswith(f"--tiny: cannot synthesize a tiny {arch}: no processor for {arch}: {arch} is multimodal")
    assert "none named by its code, none for model_type moss_transcribe_diarize" in message
    assert [
        path.name for path in (tmp_path / "tiny").iterdir() if not path.name.endswith(".lock")
    ] == []  # complete or absent


def test_a_text_model_gets_no_processor(upstream_python, tmp_path):
    tiny = checkpoints.synthesize(
        str(upstream_python),
        "mistral",
        VERSION,
        "Ministral3ForCausalLM",
        upstream_class("transformers.models.mistral.configuration_mistral", "MistralConfig"),
        cache=tmp_path,
    )
    assert json.loads((tiny.path / STAMP).read_text())["processor"] is None
    assert not (Path(tiny.path) / "processor_config.json").exists()


# the tiny tokenizer's class named as the model's in transformers' auto mapping, where it loads alike
_NAME_CLASS = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import processors
folder = Path(sys.argv[2])
print(json.dumps([processors.name_tokenizer_class(folder, ("BertTokenizer",)),
                  processors.name_tokenizer_class(folder, ("BertTokenizer", "Qwen2Tokenizer"))]))
"""
_ENCODE = """
import json, sys
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
print(json.dumps([type(tokenizer).__name__, tokenizer.encode(sys.argv[2])]))
"""


def test_the_tokenizer_is_named_as_the_models_class_where_both_envs_load_it_alike(
    upstream_python, pinned_python, checkpoint, tmp_path
):
    """A transformers 4 processor checks its tokenizer's class (Qwen3VLProcessor wants a
    Qwen2Tokenizer), which a generic PreTrainedTokenizerFast fails: the tiny tokenizer is named as
    the model's class, where that class loads the same tokenizer.json to the same ids; a class that
    does not (BERT's) leaves the config as it was."""
    folder = tmp_path / "tokenizer"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).write_text((checkpoint / name).read_text())
    text = "Explain why the sky is blue. 天空为什么是蓝色的？"
    plain = json.loads(run_in_env(upstream_python, "-c", _ENCODE, str(folder), text, label="encode"))
    tiny = Path(sources.__file__).parent
    named = run_in_env(upstream_python, "-c", _NAME_CLASS, str(tiny), str(folder), label="name-class")
    assert json.loads(named.strip().splitlines()[-1]) == [None, "Qwen2Tokenizer"]
    assert json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"] == "Qwen2Tokenizer"
    upstream = json.loads(run_in_env(upstream_python, "-c", _ENCODE, str(folder), text, label="encode"))
    pinned = json.loads(run_in_env(pinned_python, "-c", _ENCODE, str(folder), text, label="encode"))
    assert (upstream[0], pinned[0]) == ("Qwen2Tokenizer", "Qwen2TokenizerFast")
    assert upstream[1] == pinned[1] == plain[1]
