"""What --vllm-python holds, found without importing anything there; one line per missing piece.

The envs here are bare venvs of this interpreter with folders on their path: the probe only
looks packages up (importlib.util.find_spec, entry points), it never imports vLLM.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_flmigrate.envs import probe
from pytest_flmigrate.errors import FlmigrateError


def bare_env(root: Path, *paths: Path) -> str:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = next((root / "lib").glob("python*/site-packages"))
    (site / "extra.pth").write_text("".join(f"{path}\n" for path in paths))
    return str(root / "bin" / "python")


@pytest.fixture
def lookups(tmp_path: Path) -> Path:
    """A folder holding a package named vllm (looked up, never imported)."""
    folder = tmp_path / "lookups"
    (folder / "vllm").mkdir(parents=True)
    (folder / "vllm" / "__init__.py").write_text("raise SystemExit('the probe must not import vllm')\n")
    return folder


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    (tmp_path / "plugin" / "vllm_fl").mkdir(parents=True)
    (tmp_path / "plugin" / "vllm_fl" / "__init__.py").write_text("")
    return tmp_path / "plugin"


def entry_point(folder: Path) -> None:
    info = folder / "vllm_plugin_fl-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm-plugin-fl\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[vllm.general_plugins]\nfl = vllm_fl:register_model\n")


def check(python: str, plugin: Path, tmp_path: Path, **needs) -> probe.EnvProbe:
    found = probe.probe(python, tmp_path)
    probe.require(found, plugin, **needs)
    return found


def test_interpreter_that_does_not_exist(tmp_path, plugin):
    with pytest.raises(
        FlmigrateError, match=r"^--vllm-python /nonexistent/python: no such interpreter; pass the python"
    ):
        check("/nonexistent/python", plugin, tmp_path)


def test_interpreter_without_vllm(tmp_path, plugin):
    python = bare_env(tmp_path / "env")
    with pytest.raises(
        FlmigrateError, match=r"no vLLM importable there; pass the python of the env that holds vLLM 0.13.0"
    ):
        check(python, plugin, tmp_path)


def test_env_without_pytest(tmp_path, plugin, lookups):
    entry_point(lookups)
    python = bare_env(tmp_path / "env", lookups, plugin)
    with pytest.raises(
        FlmigrateError, match=rf"pytest is not installed in that env; install it there: {python} -m pip install pytest"
    ):
        check(python, plugin, tmp_path, pytest=True)
    assert check(python, plugin, tmp_path).plugin_dir == str(plugin / "vllm_fl")  # fine for steps without pytest


def test_plugin_not_installed(tmp_path, plugin, lookups):
    python = bare_env(tmp_path / "env", lookups)
    with pytest.raises(FlmigrateError) as caught:
        check(python, plugin, tmp_path)
    assert str(caught.value) == (
        f"the plugin is not installed in the env of --vllm-python {python} (no vllm_fl importable); "
        f"install it: {python} -m pip install --no-deps -e {plugin}"
    )


def test_plugin_installed_from_another_checkout(tmp_path, plugin, lookups):
    other = tmp_path / "other"
    (other / "vllm_fl").mkdir(parents=True)
    (other / "vllm_fl" / "__init__.py").write_text("")
    python = bare_env(tmp_path / "env", lookups, other)
    with pytest.raises(
        FlmigrateError, match=rf"imports vllm_fl from {other / 'vllm_fl'}, not from --plugin-dir {plugin}"
    ):
        check(python, plugin, tmp_path)


def test_plugin_without_entry_point(tmp_path, plugin, lookups):
    python = bare_env(tmp_path / "env", lookups, plugin)
    with pytest.raises(FlmigrateError, match=r"no 'vllm.general_plugins' entry point loads it"):
        check(python, plugin, tmp_path)


def test_complete_env(tmp_path, plugin, lookups):
    entry_point(lookups)
    python = bare_env(tmp_path / "env", lookups, plugin)
    found = check(python, plugin, tmp_path)
    assert found.vllm_dir == str(lookups / "vllm")
    assert [ep["value"] for ep in found.plugin_entry_points] == ["vllm_fl:register_model"]
