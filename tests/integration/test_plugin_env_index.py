"""Installing a plugin checkout whose build requirements come from the package index (envs/plugin_env.py),
as the real plugin's install does: setuptools-scm fetched, what the env already holds not fetched again.
The checkouts and the base env: tests/unit/test_plugin_env.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pytest_flmigrate.envs import plugin_env
from tests.unit.test_plugin_env import ENV_ONLY, _base_env_holding, checkout


def test_a_checkout_building_with_setuptools_scm_and_what_the_env_holds_installs(tmp_path):
    """The real plugin's install: setuptools-scm comes from the index, the requirement the env
    already holds is not fetched again (under pip's build isolation it would be, and here no index has it)."""
    base = _base_env_holding(tmp_path, ENV_ONLY)
    tree = checkout(
        tmp_path, ["setuptools>=68", "setuptools-scm>=8", ENV_ONLY], extra_import=ENV_ONLY.replace("-", "_")
    )
    python = plugin_env.plugin_env(base, tree, tmp_path / "env")
    probe = (
        "import importlib.metadata as md, json, setuptools_scm, vllm_fl\n"
        "print(json.dumps([vllm_fl.__file__, [e.value for e in md.entry_points(group='vllm.general_plugins')],"
        " setuptools_scm.__file__]))"
    )
    found = json.loads(subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert found[:2] == [str(tree / "vllm_fl" / "__init__.py"), ["vllm_fl:register_model"]]
    assert Path(found[2]).is_relative_to(tmp_path / "env")  # the build requirements went into the new env only
