"""Installing a plugin checkout into a layered env (envs/plugin_env.py), as the plugin's README does:
build requirements first, then ``pip install --no-build-isolation --no-deps -e``.

The checkouts are written here, in the shapes of the real plugin's install (a setup.py importing
setuptools_scm, a build requirement that the env already holds and no index serves, as torch is for
the plugin). The base env is this venv; tests/integration/test_plugin_env_index.py takes setuptools
and setuptools-scm from the package index.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_flmigrate.envs import plugin_env
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.steps import import_smoke

SETUP_PY = """\
import setuptools_scm  # noqa: F401 (the real plugin's setup.py needs it at build time)
{extra}from setuptools import setup

setup()
"""
PYPROJECT = """\
[build-system]
requires = {requires}
build-backend = "setuptools.build_meta"

[project]
name = "vllm-plugin-fl-shape"
version = "0.0.1"

[project.entry-points."vllm.general_plugins"]
fl = "vllm_fl:register_model"

[tool.setuptools.packages.find]
include = ["vllm_fl*"]
"""
#: Held by the base env, served by no index (as torch is for the plugin: already in the pinned env).
ENV_ONLY = "flmigrate-fixture-env-only"


def checkout(root: Path, requires: list[str], extra_import: str = "") -> Path:
    tree = root / "plugin"
    (tree / "vllm_fl").mkdir(parents=True)
    (tree / "vllm_fl" / "__init__.py").write_text("def register_model():\n    pass\n")
    (tree / "pyproject.toml").write_text(PYPROJECT.format(requires=json.dumps(requires)))
    (tree / "setup.py").write_text(
        SETUP_PY.format(extra=f"import {extra_import}  # noqa: F401\n" if extra_import else "")
    )
    return tree


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip without any index: what a build needs must already be in the env."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")


def test_a_build_requirement_no_index_serves_is_one_line_and_leaves_no_env(tmp_path, offline):
    tree = checkout(tmp_path, ["setuptools", "flmigrate-no-such-build-dep"])
    dest = tmp_path / "env"
    with pytest.raises(FlmigrateError) as caught:
        plugin_env.plugin_env(sys.executable, tree, dest)
    assert caught.value.message == (
        f"installing the build requirements of {tree} (setuptools, flmigrate-no-such-build-dep) failed: "
        "No matching distribution found for flmigrate-no-such-build-dep"
    )
    assert not dest.exists()


def test_a_setup_py_needing_setuptools_scm_the_env_lacks_is_one_line(tmp_path, offline):
    tree = checkout(tmp_path, [])  # it does not name setuptools-scm: nothing installs it
    dest = tmp_path / "env"
    result = subprocess.run(
        [sys.executable, "-m", "pytest_flmigrate.envs.plugin_env", sys.executable, str(tree), str(dest)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"plugin_env: pip install --no-build-isolation --no-deps -e {tree} failed: "
        "ModuleNotFoundError: No module named 'setuptools_scm'"
    ]
    assert not dest.exists()


def test_a_pyproject_that_is_not_toml_is_one_line(tmp_path):
    tree = checkout(tmp_path, [])
    (tree / "pyproject.toml").write_text("[build-system\n")
    with pytest.raises(FlmigrateError, match=r"pyproject.toml: not valid TOML \(.*\); the plugin cannot be installed$"):
        plugin_env.build_requirements(tree)


def test_the_cause_of_a_failed_build_is_the_builds_own_error():
    output = (
        "  error: subprocess-exited-with-error\n\n"
        "  × Preparing editable metadata (pyproject.toml) did not run successfully.\n"
        "  │ exit code: 1\n"
        "  ╰─> [3 lines of output]\n"
        "      usage: setup.py [global_opts] cmd1 [cmd1_opts] [cmd2 [cmd2_opts] ...]\n"
        "      error: invalid command 'bdist_wheel'\n"
        "      [end of output]\n\n"
        "  note: This error originates from a subprocess, and is likely not a problem with pip.\n"
        "error: metadata-generation-failed\n"
        "hint: See above for details.\n"
    )
    assert plugin_env._cause(output) == "invalid command 'bdist_wheel'"


def test_build_requirements_default_to_setuptools(tmp_path):
    tree = checkout(tmp_path, [])
    (tree / "pyproject.toml").unlink()
    assert plugin_env.build_requirements(tree) == ["setuptools>=40.8.0"]


def _base_env_holding(root: Path, distribution: str) -> Path:
    """A layered env over this venv that also holds ``distribution`` (a module and its dist-info)."""
    python = plugin_env.layered_env(sys.executable, root / "base")
    site = Path(plugin_env.site_dirs(python)[0])
    module = distribution.replace("-", "_")
    (site / f"{module}.py").write_text("")
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    (info / "RECORD").write_text("")
    return python


# --- step 4's import smoke with a plugin whose platform cannot load in the env ------------------

#: The migrated module sees the platform plugins as vLLM's discovery would, when it resolves the platform.
SEES_PLATFORMS = """\
import json
from importlib.metadata import entry_points

print("SEEN-PLATFORMS " + json.dumps([ep.value for ep in entry_points(group="vllm.platform_plugins")]))
"""


def platform_checkout(root: Path, platform_module: str) -> tuple[Path, Path]:
    """A checkout with a general and a platform plugin (both named ``fl``, as the real plugin's),
    installed as an editable install is (a .pth and a dist-info with its entry points) into a layered
    env over this venv; returns the checkout and the env's python."""
    tree = root / "plugin"
    (tree / "vllm_fl" / "models").mkdir(parents=True)
    (tree / "vllm_fl" / "__init__.py").write_text(
        "def register():\n    return 'vllm_fl.platform.PlatformFL'\n\n\ndef register_model():\n    pass\n"
    )
    (tree / "vllm_fl" / "platform.py").write_text(platform_module)
    (tree / "vllm_fl" / "models" / "__init__.py").write_text("")
    (tree / "vllm_fl" / "models" / "tiny.py").write_text(SEES_PLATFORMS)
    python = plugin_env.layered_env(sys.executable, root / "env")
    site = Path(plugin_env.site_dirs(python)[0])
    (site / "vllm_plugin_fl_shape.pth").write_text(f"{tree}\n")
    info = site / "vllm_plugin_fl_shape-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm-plugin-fl-shape\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(
        "[vllm.general_plugins]\nfl = vllm_fl:register_model\n\n[vllm.platform_plugins]\nfl = vllm_fl:register\n"
    )
    return tree, python


def smoke(tmp_path: Path, platform_module: str) -> tuple[import_smoke.SmokeResult, list[str]]:
    """The smoke's result, and the platform plugins the migrated module saw."""
    _, python = platform_checkout(tmp_path, platform_module)
    result = import_smoke.import_modules(str(python), ["vllm_fl.models.tiny"], tmp_path / "smoke.log")
    seen = [line for line in (tmp_path / "smoke.log").read_text().splitlines() if line.startswith("SEEN-PLATFORMS ")]
    return result, json.loads(seen[0].removeprefix("SEEN-PLATFORMS "))


def test_a_platform_plugin_that_cannot_load_is_an_environment_fact_and_left_out(tmp_path):
    """The real plugin's platform needs FlagGems (``import flag_gems`` in vllm_fl/platform.py)."""
    result, seen = smoke(tmp_path, "import flag_gems  # noqa: F401\n\n\nclass PlatformFL:\n    pass\n")
    assert result.imports == {"vllm_fl.models.tiny": {"ok": True}}
    platform = result.as_dict()["platform"]
    assert (platform["entry_point"], platform["missing"]) == ("fl = vllm_fl:register", "flag_gems")
    assert platform["error"] == "ModuleNotFoundError: No module named 'flag_gems'"
    assert platform["fact"] == (
        "environment, not the port: the plugin's platform plugin (fl = vllm_fl:register) cannot load in the env "
        "of --vllm-python (ModuleNotFoundError: No module named 'flag_gems'), so the migrated modules were "
        "imported on vLLM's own platform; to use the plugin's platform, install flag-gems in that env, or run "
        "on the plugin's hardware"
    )
    assert seen == []  # vLLM's discovery, as the migrated module imported, found vLLM's own platforms only


def test_a_platform_plugin_that_loads_stays_in(tmp_path):
    result, seen = smoke(tmp_path, "class PlatformFL:\n    pass\n")
    assert result.imports == {"vllm_fl.models.tiny": {"ok": True}} and result.platform is None
    assert seen == ["vllm_fl:register"]
