"""The provisioned CPU vLLM envs and the tiny checkpoint (scripts/provision-cpu-envs).

The envs that the script built (found by pytest_flmigrate.envs, i.e. under $FLMIGRATE_CACHE or
~/.cache/pytest-flmigrate); skips, naming the command to run, when they are absent. The cache is
read when this module is imported, before any fixture points FLMIGRATE_CACHE at a per-test folder.
The helpers, the script's ready path, what a pinned env installs and the script's bad inputs,
without building anything: tests/unit/test_envs.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pytest_flmigrate import envs
from pytest_flmigrate.index import sources
from tests.fixtures.missing import skip_or_fail
from tests.fixtures.recipes import PINNED_RECIPE, UPSTREAM_RECIPE

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The real cache (envs are built once per machine), read before fixtures isolate the cache.
REAL_CACHE = sources.cache_dir()
#: The envs this run uses (FLMIGRATE_PINNED_VLLM / FLMIGRATE_UPSTREAM_VLLM choose other versions).
PINNED_ENV, UPSTREAM_ENV = envs.pinned_env(), envs.upstream_env()
#: The torch each default version's wheel pins (other versions are checked for vLLM only).
EXPECTED_TORCH = {envs.env_name("0.13.0"): "2.9.1", envs.env_name("0.32.0"): "2.13.0"}
CHECKPOINT_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
}


def _python_or_skip(name: str) -> Path:
    python = envs.env_python(name, REAL_CACHE)
    if python is None:
        skip_or_fail(envs.missing_env_reason(name, REAL_CACHE))
    return python


def _run(cmd: list[str], scratch: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    env = envs.vllm_env(scratch)
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _make_checkpoint(python: Path, out: Path, scratch: Path, *extra: str, as_module: bool = False) -> str:
    if as_module:
        cmd = [str(python), "-m", "pytest_flmigrate.tiny.qwen2_checkpoint", str(out), *extra]
    else:
        cmd = [str(python), str(envs.TINY_CHECKPOINT_SCRIPT), str(out), *extra]
    return _run(cmd, scratch, cwd=str(scratch)).stdout


@pytest.fixture(scope="module")
def pinned_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = _python_or_skip(PINNED_ENV)
    out = tmp_path_factory.mktemp("ckpt") / "tiny-qwen2"
    _make_checkpoint(python, out, tmp_path_factory.mktemp("scratch"))
    return out


@pytest.mark.parametrize("name", [PINNED_ENV, UPSTREAM_ENV])
def test_marker_holds_the_verified_versions(name: str) -> None:
    python = _python_or_skip(name)
    marker = envs.env_marker(name, REAL_CACHE)
    assert marker is not None
    assert marker["name"] == name
    assert marker["vllm"].split("+")[0] == envs.expected_vllm(name)
    if name in EXPECTED_TORCH:
        assert marker["torch"].split("+")[0] == EXPECTED_TORCH[name]
    assert python == envs.env_dir(name, REAL_CACHE) / "bin" / "python"
    assert marker["build_seconds"] >= 0 and marker["size_bytes"] > 0


_MEDIA = """
import timm, torch, torchaudio, torchvision
boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]])
kept = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist()
image = torchvision.transforms.functional.resize(torch.rand(3, 32, 48), [16, 24], antialias=True)
features = torchaudio.compliance.kaldi.fbank(torch.sin(torch.arange(16000.0) / 8).unsqueeze(0), num_mel_bins=23)
resampled = torchaudio.functional.resample(torch.zeros(1, 16000), 16000, 8000)
print(kept, list(image.shape), list(features.shape), list(resampled.shape), timm.layers.Mlp(8, 16)(torch.zeros(1, 8)).shape[1])
"""


@pytest.mark.parametrize(("name", "recipe"), [(PINNED_ENV, PINNED_RECIPE), (UPSTREAM_ENV, UPSTREAM_RECIPE)])
def test_every_env_runs_torchvision_torchaudio_and_timm(name: str, recipe: int, tmp_path: Path) -> None:
    """Vision and audio towers and their processors import these, at the pin as in the control: each
    env runs their compiled ops (torchvision's nms), their transforms and torchaudio's features."""
    python = _python_or_skip(name)
    marker = envs.env_marker(name, REAL_CACHE)
    assert marker is not None and marker["recipe"] == recipe
    assert marker["torchvision"] and marker["torchaudio"] and marker["timm"], marker
    out = _run([str(python), "-c", _MEDIA], tmp_path).stdout.strip().splitlines()[-1]
    assert out == "[0, 2] [3, 16, 24] [98, 23] [1, 8000] 8"


def test_checkpoint_maker_is_deterministic_and_idempotent(pinned_checkpoint: Path, tmp_path: Path) -> None:
    python = _python_or_skip(PINNED_ENV)
    second = tmp_path / "second"
    out = _make_checkpoint(python, second, tmp_path / "scratch", as_module=True)
    assert "written" in out
    first_files = {p.name for p in pinned_checkpoint.iterdir() if not p.name.startswith(".")}
    assert CHECKPOINT_FILES <= first_files
    for name in sorted(CHECKPOINT_FILES):
        assert (second / name).read_bytes() == (pinned_checkpoint / name).read_bytes(), name
    # Same arguments again: nothing rewritten.
    before = (second / "model.safetensors").stat().st_mtime_ns
    out = _make_checkpoint(python, second, tmp_path / "scratch")
    assert "already complete" in out
    assert (second / "model.safetensors").stat().st_mtime_ns == before


def test_checkpoint_shape_follows_the_recipe(pinned_checkpoint: Path) -> None:
    config = json.loads((pinned_checkpoint / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"] and config["model_type"] == "qwen2"
    assert (config["hidden_size"], config["num_hidden_layers"]) == (128, 2)
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (4, 2)
    assert config["hidden_size"] // config["num_attention_heads"] == 32
    assert config["vocab_size"] == 2048 and config["torch_dtype"] == "float32"
    header_len = int.from_bytes((pinned_checkpoint / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((pinned_checkpoint / "model.safetensors").read_bytes()[8 : 8 + header_len])
    dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    assert dtypes == {"F32"}
    assert header["model.embed_tokens.weight"]["shape"] == [2048, 128]
    assert header["__metadata__"] == {"format": "pt"}
    generation = json.loads((pinned_checkpoint / "generation_config.json").read_text())
    assert generation["eos_token_id"]


def test_arch_and_model_type_options_only_change_the_config(pinned_checkpoint: Path, tmp_path: Path) -> None:
    python = _python_or_skip(PINNED_ENV)
    out = tmp_path / "migrated"
    _make_checkpoint(
        python, out, tmp_path / "scratch", "--arch", "TinyMigratedForCausalLM", "--model-type", "tiny_migrated"
    )
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["TinyMigratedForCausalLM"]
    assert config["model_type"] == "tiny_migrated"
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).read_bytes() == (pinned_checkpoint / name).read_bytes(), name


_TOKENIZER_PROBE = r"""
import json, sys
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
messages = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "请介绍一下你自己。 What is 12 * 12? def f(x): return x"}]
text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
ids = tok(text)["input_ids"]
print(json.dumps({"len": len(tok), "text": text, "ids": ids, "decoded": tok.decode(ids),
                  "eos": tok.eos_token, "n_words": len(tok("The quick brown fox")["input_ids"])}))
"""


@pytest.mark.parametrize("name", [PINNED_ENV, UPSTREAM_ENV])
def test_auto_tokenizer_loads_and_applies_the_chat_template(name: str, pinned_checkpoint: Path, tmp_path: Path) -> None:
    python = _python_or_skip(name)
    proc = _run([str(python), "-c", _TOKENIZER_PROBE, str(pinned_checkpoint)], tmp_path)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["len"] == 2048
    assert result["eos"] == "<|im_end|>"
    assert result["text"] == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n请介绍一下你自己。 What is 12 * 12? def f(x): return x<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert result["ids"][0] == 1 and result["ids"].count(2) == 2  # <|im_start|>, <|im_end|> are single tokens
    assert result["decoded"] == result["text"]
    assert result["n_words"] <= 6  # trained merges: common English words are whole tokens


_TOKENIZE = r"""
import json, sys
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
prompts = json.loads(sys.argv[2])
out = []
for prompt in prompts:
    messages = [{"role": "user", "content": prompt}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    out.append(tok(text)["input_ids"])
print(json.dumps(out))
"""


def test_pinned_and_upstream_envs_tokenize_alike(pinned_checkpoint: Path, tmp_path: Path) -> None:
    """E2E compares token ids of a 0.13.0 and a 0.32.0 server: their tokenizers must agree
    (transformers 5 rebuilds a qwen2 tokenizer with Qwen2's own pre-tokenizer)."""
    prompts = [
        "What is 12 * 12? 2 + 2 = 4, and 1024 / 8 = 128.",
        "请介绍一下你自己。北京是中国的首都。",
        "def quick_sort(values):\n    return sorted(values)  # 42",
        "Hello, how are you today?   Fine!\n\nThanks.",
    ]
    results = []
    for name in (PINNED_ENV, UPSTREAM_ENV):
        python = _python_or_skip(name)
        proc = _run([str(python), "-c", _TOKENIZE, str(pinned_checkpoint), json.dumps(prompts)], tmp_path / name)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert results[0] == results[1]
