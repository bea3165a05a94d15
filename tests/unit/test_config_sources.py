"""Steps 2-5 on a config class upstream defines only for type checkers or inside model code: a config
bridge is a configuration module alone, never a copy of model code, and step 5 is red when
register_model() imports or registers something that does not exist at run time."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.trees import write

REGISTRY = """
    _TEXT_GENERATION_MODELS = {
        "TinyForCausalLM": ("tiny", "TinyForCausalLM"),
        "LlamaForCausalLM": ("llama", "LlamaForCausalLM"),
        "StubForCausalLM": ("stub", "StubForCausalLM"),
        "InlineForCausalLM": ("inline", "InlineForCausalLM"),
    }
"""
STUB = '''
    """Inference-only Stub model (its checkpoint brings the config as remote code)."""
    from typing import TYPE_CHECKING

    from transformers.configuration_utils import PretrainedConfig

    # Only used for type hinting.
    if TYPE_CHECKING:

        class StubConfig(PretrainedConfig):
            model_type = "stub"
            hidden_size: int


    class StubForCausalLM:
        def __init__(self, *, vllm_config, prefix=""):
            self.config: StubConfig = vllm_config.model_config.hf_config
'''
INLINE = '''
    """Inference-only Inline model."""
    from transformers.configuration_utils import PretrainedConfig


    class InlineConfig(PretrainedConfig):
        model_type = "inline"

        def __init__(self, hidden_size=64, **kwargs):
            self.hidden_size = hidden_size


    class InlineForCausalLM:
        def __init__(self, *, vllm_config, prefix=""):
            self.config: InlineConfig = vllm_config.model_config.hf_config
'''


def with_models(trees) -> tuple[str, ...]:
    upstream, pinned = trees
    write(
        upstream,
        {
            "vllm/model_executor/models/registry.py": REGISTRY,
            "vllm/model_executor/models/stub.py": STUB,
            "vllm/model_executor/models/inline.py": INLINE,
        },
    )
    return ("--upstream", str(upstream), "--pinned", str(pinned))


def summary(plugin: Path, model: str) -> dict:
    return json.loads((plugin / "reports" / model / "summary.json").read_text())


def test_config_defined_only_for_type_checkers_is_not_bridged_and_not_registered(flmigrate, plugin_tree, trees):
    """The checkpoint's own config serves: no vllm_fl/configs/ copy of the model file, the
    architecture registered at the model module, no config import."""
    result = flmigrate(*with_models(trees), "--model", "stub")
    assert result.ret == 0, result.stdout.str()
    assert not (plugin_tree / "vllm_fl/configs/stub.py").exists()
    assert (plugin_tree / "vllm_fl/models/stub.py").is_file()
    init = (plugin_tree / "vllm_fl/__init__.py").read_text()
    assert '"vllm_fl.models.stub:StubForCausalLM"' in init
    assert "StubConfig" not in init and "vllm_fl.configs" not in init
    data = summary(plugin_tree, "stub")
    assert data["config_source"] == {
        "kind": "TYPE_CHECKING only",
        "class": "StubConfig",
        "module": "vllm.model_executor.models.stub",
        "model_type": "stub",
    }
    assert data["bridge"]["needed"] is False
    assert "only under TYPE_CHECKING" in data["bridge"]["reason"]
    assert [f["path"] for f in data["files"]] == ["vllm_fl/models/stub.py"]
    assert "config source: TYPE_CHECKING only" in (plugin_tree / "reports/stub/report.md").read_text()


def test_config_defined_in_model_code_is_registered_from_the_migrated_model(flmigrate, plugin_tree, trees):
    result = flmigrate(*with_models(trees), "--model", "inline")
    assert result.ret == 0, result.stdout.str()
    assert not (plugin_tree / "vllm_fl/configs/inline.py").exists()
    init = (plugin_tree / "vllm_fl/__init__.py").read_text()
    assert "from vllm_fl.models.inline import InlineConfig" in init
    assert '_CONFIG_REGISTRY["inline"] = InlineConfig' in init
    assert '"vllm_fl.models.inline:InlineForCausalLM"' in init
    data = summary(plugin_tree, "inline")
    assert data["config_source"]["kind"] == "model module"
    assert "registered from vllm_fl.models.inline, no bridge file" in data["bridge"]["reason"]


def test_registration_importing_what_does_not_exist_is_a_red_step_5(flmigrate, plugin_tree, trees):
    """A block whose import fails would only log a warning when vLLM loads the plugin (the
    architecture then is never registered): step 5 fails and names the line."""
    init = plugin_tree / "vllm_fl/__init__.py"
    init.write_text(
        init.read_text()
        + """
    # Register tiny model
    try:
        from vllm_fl.configs.tiny_legacy import TinyLegacyConfig
    except Exception as e:
        logger.warning("Register tiny model error: %s", e)
"""
    )
    result = flmigrate(*with_models(trees), "--model", "tiny")
    step = summary(plugin_tree, "tiny")["steps"]["5"]
    assert step["outcome"] == "failed", result.stdout.str()
    line = next(n for n, text in enumerate(init.read_text().splitlines(), 1) if "tiny_legacy" in text)
    assert (
        f"vllm_fl/__init__.py:{line}: from vllm_fl.configs.tiny_legacy import TinyLegacyConfig: "
        "no module vllm_fl.configs.tiny_legacy"
    ) in step["reason"]
    assert "Traceback" not in result.stdout.str()
