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
