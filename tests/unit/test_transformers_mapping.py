"""transformers' CONFIG_MAPPING_NAMES, read from source in both layouts (before and since transformers 5)."""

from __future__ import annotations

from pathlib import Path

from pytest_flmigrate.registries import transformers_config_mapping


def write(root: Path, relative: str, text: str) -> None:
    path = root / "models" / "auto" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_literal_table_in_configuration_auto(tmp_path):
    write(tmp_path, "configuration_auto.py",
          'from collections import OrderedDict\nCONFIG_MAPPING_NAMES = OrderedDict(\n    [("qwen2", "Qwen2Config"), ("llama", "LlamaConfig")]\n)\n')
    assert transformers_config_mapping(tmp_path) == {"qwen2": "Qwen2Config", "llama": "LlamaConfig"}


def test_generated_table_amended_by_configuration_auto(tmp_path):
    write(tmp_path, "auto_mappings.py",
          'from collections import OrderedDict\nCONFIG_MAPPING_NAMES = OrderedDict([("qwen2", "Qwen2Config")])\n')
    write(tmp_path, "configuration_auto.py",
          "from .auto_mappings import CONFIG_MAPPING_NAMES\n"
          'CONFIG_MAPPING_NAMES.update({"mlcd": "MLCDVisionConfig"})\n'
          'CONFIG_MAPPING_NAMES = OrderedDict(**{"gpt-sw3": "GPT2Config"}, **CONFIG_MAPPING_NAMES)\n')
    assert transformers_config_mapping(tmp_path) == {
        "qwen2": "Qwen2Config", "mlcd": "MLCDVisionConfig", "gpt-sw3": "GPT2Config",
    }
