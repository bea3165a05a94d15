"""The real plugin's platform plugin on a machine without its accelerator: not the port's fault.

The plugin names its platform plugin and its general plugin both ``fl``; its platform needs
FlagGems (``import flag_gems`` in ``vllm_fl/platform.py``), which the CPU env lacks. A copy of the
example plugin is given that shape (written here, not the plugin's code) and ``mimo`` migrated into
it: step 4's import smoke imports the migrated module on vLLM's own platform and reports the
platform as an environment fact with its fix; steps 4-6 pass.
"""

from __future__ import annotations

from tests.runtime.suite_run import EXAMPLE_PLUGIN, flmigrate, plugin_tree

INIT = '''"""vllm_fl in the real plugin's shape: a platform plugin and a general plugin, both named fl."""


def register():
    """Platform plugin entry point: the plugin's accelerator platform."""
    return "vllm_fl.platform.PlatformFL"


def register_model():
    """General plugin entry point: register the plugin's model classes with vLLM."""
    from vllm import ModelRegistry  # noqa: F401
'''
PLATFORM = '''"""The plugin's accelerator platform, backed by FlagGems."""

import flag_gems  # noqa: F401
from vllm.platforms.interface import Platform


class PlatformFL(Platform):
    device_name = "flagos"
'''
ENTRY_POINT = """
[project.entry-points."vllm.platform_plugins"]
fl = "vllm_fl:register"
"""


def test_a_platform_needing_flag_gems_is_an_environment_fact_and_steps_4_to_6_pass(pinned_python, tmp_path):
    pyproject = (EXAMPLE_PLUGIN / "pyproject.toml").read_text() + ENTRY_POINT
    files = {"vllm_fl/__init__.py": INIT, "vllm_fl/platform.py": PLATFORM, "pyproject.toml": pyproject}
    tree, python = plugin_tree(tmp_path, pinned_python, files)
    run = flmigrate(tree, python, "-k", "step02 or step04 or step05 or step06")
    assert run.outcomes("4", "5", "6") == dict.fromkeys("456", "passed"), run.output[-5000:]
    smoke = run.summary["import_smoke"]
    assert smoke["imports"] == {"vllm_fl.models.mimo": {"ok": True}}
    platform = smoke["platform"]
    assert (platform["entry_point"], platform["missing"]) == ("fl = vllm_fl:register", "flag_gems")
    assert "install flag-gems in that env, or run on the plugin's hardware" in platform["fact"]
    assert platform["fact"] in run.summary["notes"]
