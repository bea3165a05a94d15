"""The plugin's own patches in a run of the suite (steps 2-6) on the synthetic trees: a gap the
catalog does not know (``gapped``'s ``FancyNorm``) fixed by the checkout's own translation."""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import pytest

from tests.fixtures.synthetic import LOCAL_PATCH

FOLDER = "flmigrate_patches"


def run_args(trees, *extra):
    upstream_dir, pinned_dir = trees
    return ("--upstream", str(upstream_dir), "--pinned", str(pinned_dir), "--model", "gapped", *extra)


def summary(plugin_tree: Path) -> dict:
    return json.loads((plugin_tree / "reports/gapped/summary.json").read_text())


def with_local_patch(plugin_tree: Path, text: str = LOCAL_PATCH) -> None:
    (plugin_tree / FOLDER).mkdir()
    (plugin_tree / FOLDER / "l1_fancy_norm.py").write_text(dedent(text))
    with (plugin_tree / "pyproject.toml").open("a") as pyproject:
        pyproject.write(f'local-patches = "{FOLDER}"\n')


def unresolved(data: dict) -> list[dict]:
    return [f for f in data["findings"] if f["check"] == "unresolved-imports"]


def test_without_the_plugins_patch_the_gap_stays_a_step_6_finding(flmigrate, plugin_tree, trees):
    flmigrate(*run_args(trees))
    data = summary(plugin_tree)
    assert data["steps"]["4"]["outcome"] == "passed" and data["steps"]["6"]["outcome"] == "failed"
    (finding,) = unresolved(data)
    assert finding["symbol"] == "vllm.model_executor.layers.fancy_norm.FancyNorm"
    assert "it calls torch.ops kernels" in finding["message"]
    assert data["local_patches"] == []


def test_the_plugins_own_patch_fixes_a_gap_the_catalog_does_not_know(flmigrate, plugin_tree, trees):
    with_local_patch(plugin_tree)
    result = flmigrate(*run_args(trees))
    assert result.ret == 0, result.stdout.str()
    model = (plugin_tree / "vllm_fl/models/gapped.py").read_text()
    assert "from vllm.model_executor.layers.layernorm import RMSNorm as FancyNorm\n" in model
    data = summary(plugin_tree)
    assert data["steps"]["4"]["outcome"] == "passed" and data["steps"]["6"]["outcome"] == "passed"
    assert data["patches"] == {"L1": 1}
    assert data["local_patches"] == [
        {
            "id": "L1",
            "name": "fancy-norm",
            "source": "flmigrate_patches/l1_fancy_norm.py",
            "summary": "L1: upstream's FancyNorm -> the pin's RMSNorm.",
            "rewrites": 1,
        }
    ]
    assert [f["patches"] for f in data["files"] if f["path"] == "vllm_fl/models/gapped.py"] == [{"L1": 1}]
    report = (plugin_tree / "reports/gapped/report.md").read_text()
    assert "- L1 (the plugin's own: `flmigrate_patches/l1_fancy_norm.py`): 1 rewrite(s)" in report
    assert "## The plugin's own patches" in report
    # no backport was planned for what the translation rewrites away (step 4's plan), none written
    assert not (plugin_tree / "vllm_fl/compat").exists()


def test_a_use_the_plugins_patch_refuses_stops_step_4_like_the_catalogs(flmigrate, plugin_tree, trees):
    upstream_dir, _ = trees
    model = upstream_dir / "vllm/model_executor/models/gapped.py"
    model.write_text(model.read_text().replace("eps=1e-5", "fused=True"))
    with_local_patch(plugin_tree)
    flmigrate(*run_args(trees))
    step = summary(plugin_tree)["steps"]["4"]
    assert step["outcome"] == "failed"
    assert step["reason"] == (
        "vllm/model_executor/models/gapped.py:10: FancyNorm(64, fused=True): fused= has no pinned spelling "
        "(L1 fancy-norm); port it by hand, nothing was written"
    )
    assert not (plugin_tree / "vllm_fl/models/gapped.py").exists()


def test_patches_selects_the_plugins_patches_by_id(flmigrate, plugin_tree, trees):
    with_local_patch(plugin_tree)
    flmigrate(*run_args(trees, "--patches", "P1,P2,P15,P16"))
    assert summary(plugin_tree)["patches"] == {} and summary(plugin_tree)["local_patches"] == []
    flmigrate(*run_args(trees, "--patches", "P1,L1"))
    assert summary(plugin_tree)["patches"] == {"L1": 1}


def test_a_broken_patch_module_stops_the_run_before_any_step_naming_it(flmigrate, plugin_tree, trees):
    with_local_patch(plugin_tree, LOCAL_PATCH.replace('ID = "L1"', 'ID = "P9"'))
    result = flmigrate(*run_args(trees))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: flmigrate_patches/l1_fancy_norm.py: ID 'P9' is not a plugin patch id*"])
    assert "Traceback" not in result.stderr.str()
    assert not (plugin_tree / "vllm_fl/models/gapped.py").exists()


def test_a_patch_that_raises_fails_step_4_in_one_line_and_writes_nothing(flmigrate, plugin_tree, trees):
    broken = LOCAL_PATCH.replace("            return (module, name)", "            return {}[module]")
    with_local_patch(plugin_tree, broken)
    result = flmigrate(*run_args(trees))
    step = summary(plugin_tree)["steps"]["4"]
    assert step["outcome"] == "failed"
    assert step["reason"].startswith(
        "flmigrate_patches/l1_fancy_norm.py: the plugin's patch L1 fails on vllm.model_executor.models.gapped: "
        "KeyError: "
    )
    assert not (plugin_tree / "vllm_fl/models/gapped.py").exists()
    assert "Traceback" not in result.stdout.str()


def test_a_missing_folder_is_refused_before_any_step(flmigrate, plugin_tree, trees):
    result = flmigrate(*run_args(trees, "--local-patches", "nowhere"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --local-patches nowhere: no such folder in the plugin checkout;*"])
