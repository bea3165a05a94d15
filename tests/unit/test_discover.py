"""Step 2's model unit: its config found through the classes the unit imports."""

from __future__ import annotations

from pytest_flmigrate.discover import find_unit
from pytest_flmigrate.sources import SourceTree
from pytest_flmigrate.symbols import index_directory
from tests.fixtures.synthetic import COMMON, TRANSFORMERS
from tests.fixtures.trees import write


def test_package_unit_config_from_a_relative_import_in_a_checkout_named_vllm(tmp_path):
    root = write(tmp_path / "vllm", {  # a git clone of vLLM: vllm/vllm/...
        **COMMON,
        **TRANSFORMERS,
        "vllm/models/__init__.py": "",
        "vllm/model_executor/models/registry.py": """
            _TEXT_GENERATION_MODELS = {"KimiForCausalLM": ("vllm.models.kimi", "KimiForCausalLM")}
        """,
        "vllm/transformers_utils/config.py": "_CONFIG_REGISTRY = LazyConfigDict()\n",
        "vllm/models/kimi/__init__.py": "from .configuration_kimi import KimiConfig\nclass KimiForCausalLM: ...\n",
        "vllm/models/kimi/configuration_kimi.py": """
            from transformers.configuration_utils import PretrainedConfig
            class KimiConfig(PretrainedConfig):
                model_type = "kimi"
        """,
    })
    upstream = SourceTree(root, "vllm", "test", "9.1.0")
    unit = find_unit(upstream, index_directory(root, "vllm"), index_directory(root, "transformers"),
                     root / "transformers", "kimi")
    assert (unit.config.model_type, unit.config.class_name) == ("kimi", "KimiConfig")
    assert unit.config.module == "vllm.models.kimi.configuration_kimi"
