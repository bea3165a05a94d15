"""transformers' CONFIG_MAPPING_NAMES, read from source in both layouts (before and since transformers 5)."""

from __future__ import annotations

from pytest_flmigrate.index.registries import transformers_config_mapping
from tests.fixtures.trees import write


def test_literal_table_in_configuration_auto(tmp_path):
    write(
        tmp_path,
        {
            "models/auto/configuration_auto.py": """
        from collections import OrderedDict
        CONFIG_MAPPING_NAMES = OrderedDict(
            [("qwen2", "Qwen2Config"), ("llama", "LlamaConfig")]
        )
    """
        },
    )
    assert transformers_config_mapping(tmp_path) == {"qwen2": "Qwen2Config", "llama": "LlamaConfig"}


def test_generated_table_amended_by_configuration_auto(tmp_path):
    write(
        tmp_path,
        {
            "models/auto/auto_mappings.py": """
            from collections import OrderedDict
            CONFIG_MAPPING_NAMES = OrderedDict([("qwen2", "Qwen2Config")])
        """,
            "models/auto/configuration_auto.py": """
            from .auto_mappings import CONFIG_MAPPING_NAMES
            CONFIG_MAPPING_NAMES.update({"mlcd": "MLCDVisionConfig"})
            CONFIG_MAPPING_NAMES = OrderedDict(**{"gpt-sw3": "GPT2Config"}, **CONFIG_MAPPING_NAMES)
        """,
        },
    )
    assert transformers_config_mapping(tmp_path) == {
        "qwen2": "Qwen2Config",
        "mlcd": "MLCDVisionConfig",
        "gpt-sw3": "GPT2Config",
    }
