"""Step 5 on the plugin's shapes over time (tests/fixtures/plugins/, synthetic trees of our own):
new entries go where each shape keeps them, a rerun changes nothing, and a shape step 5 does not
know fails with one line and leaves vllm_fl/__init__.py as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"


@pytest.fixture
def shaped(tmp_path):
    """A fresh copy of the plugin tree of one shape."""

    def copy(shape: str) -> Path:
        target = tmp_path / shape
        shutil.copytree(SHAPES / shape, target)
        return target

    return copy


def migrate(flmigrate, trees, plugin: Path):
    upstream, pinned = trees
    return flmigrate("--model", "tiny", "--upstream", str(upstream), "--pinned", str(pinned), plugin_dir=plugin)


def step(plugin: Path, number: str) -> dict:
    return json.loads((plugin / "reports/tiny/summary.json").read_text())["steps"][number]


def added_lines(before: str, after: str) -> str:
    """What step 5 added, asserting that everything else stayed as it was."""
    assert after.startswith(before.rstrip("\n")), "step 5 changed the plugin's own lines"
    return after[len(before.rstrip("\n")) :]


def test_platform_plugin_only_is_told_what_to_add(flmigrate, trees, shaped):
    plugin = shaped("platform_only")
    init = plugin / "vllm_fl/__init__.py"
    before = init.read_text()
    result = migrate(flmigrate, trees, plugin)
    five = step(plugin, "5")
    assert five["outcome"] == "failed"
    assert five["reason"].startswith(
        "vllm_fl/__init__.py has no register_model(): add a module-level `def register_model():` "
        "(the vllm.general_plugins entry point"
    )
    assert init.read_text() == before
    assert "Traceback" not in result.stdout.str()


def test_one_try_block_per_model_gets_one_more_after_the_others(flmigrate, trees, shaped):
    plugin = shaped("try_per_model")
    init = plugin / "vllm_fl/__init__.py"
    before = init.read_text()
    result = migrate(flmigrate, trees, plugin)
    assert result.ret == 0, result.stdout.str()
    assert added_lines(before, init.read_text()) == (
        "\n"
        "\n"
        "    # Register tiny model\n"
        "    try:\n"
        "        from vllm.transformers_utils.config import _CONFIG_REGISTRY\n"
        "        from vllm_fl.configs.tiny import TinyConfig\n"
        '        _CONFIG_REGISTRY["tiny"] = TinyConfig\n'
        "        ModelRegistry.register_model(\n"
        '            "TinyForCausalLM",\n'
        '            "vllm_fl.models.tiny:TinyForCausalLM",\n'
        "        )\n"
        "    except Exception as e:\n"
        '        logger.warning("Register tiny model error: %s", e)\n'
    )
    summary = json.loads((plugin / "reports/tiny/summary.json").read_text())
    assert summary["registration_shape"] == "one try block per model"
    after = init.read_text()
    assert migrate(flmigrate, trees, plugin).ret == 0
    assert init.read_text() == after


def test_patch_calls_then_try_blocks_gets_a_block_after_the_config_registry_logging_an_error(flmigrate, trees, shaped):
    plugin = shaped("patch_calls")
    init = plugin / "vllm_fl/__init__.py"
    before = init.read_text()
    result = migrate(flmigrate, trees, plugin)
    assert result.ret == 0, result.stdout.str()
    added = added_lines(before, init.read_text())
    assert added == (
        "\n"
        "\n"
        "    # Register tiny model\n"
        "    try:\n"
        "        from vllm import ModelRegistry\n"
        "        from vllm.transformers_utils.config import _CONFIG_REGISTRY\n"
        "        from vllm_fl.configs.tiny import TinyConfig\n"
        '        _CONFIG_REGISTRY["tiny"] = TinyConfig\n'
        "        ModelRegistry.register_model(\n"
        '            "TinyForCausalLM",\n'
        '            "vllm_fl.models.tiny:TinyForCausalLM",\n'
        "        )\n"
        "    except Exception as e:\n"
        '        logger.error("Register tiny model error: %s", e)\n'
    )
    summary = json.loads((plugin / "reports/tiny/summary.json").read_text())
    assert summary["registration_shape"] == "patch calls, then try blocks"
    assert summary["registration"] == ["config tiny -> TinyConfig", "arch TinyForCausalLM"]
    after = init.read_text()
    assert migrate(flmigrate, trees, plugin).ret == 0
    assert init.read_text() == after


def test_a_shape_step_5_does_not_know_fails_with_one_line_and_writes_nothing(flmigrate, trees, shaped):
    plugin = shaped("registry_helper")
    init = plugin / "vllm_fl/__init__.py"
    before = init.read_text()
    result = migrate(flmigrate, trees, plugin)
    five = step(plugin, "5")
    assert five["outcome"] == "failed"
    line = before.splitlines().index("            ModelRegistry.register_model(architecture, target)") + 1
    assert five["reason"].splitlines()[0] == (
        f"vllm_fl/__init__.py:{line}: this plugin registers models in _register_all(), outside "
        "register_model(), a register_model() shape step 5 does not know; nothing was written. Register "
        '_CONFIG_REGISTRY["tiny"] = vllm_fl.configs.tiny.TinyConfig, '
        'ModelRegistry.register_model("TinyForCausalLM", "vllm_fl.models.tiny:TinyForCausalLM") there by hand'
    )
    assert init.read_text() == before
    assert "Traceback" not in result.stdout.str()
