"""Configs of upstream's transformers that a migration imports besides the unit's own (sub-configs,
configs of related models), bridged beside it (steps 2-6 on the synthetic trees)."""

from __future__ import annotations

import json


def test_a_transformers_config_the_pin_lacks_is_bridged_beside_the_units(flmigrate, plugin_tree, trees):
    upstream_dir, pinned_dir = trees
    result = flmigrate("--upstream", str(upstream_dir), "--pinned", str(pinned_dir), "--model", "layered")
    assert result.ret == 0, result.stdout.str()
    configs = plugin_tree / "vllm_fl/configs"
    assert "from vllm_fl.configs.layered_text import LayeredTextConfig" in (configs / "layered.py").read_text()
    assert "class LayeredTextConfig(PretrainedConfig)" in (configs / "layered_text.py").read_text()
    model = (plugin_tree / "vllm_fl/models/layered.py").read_text()
    assert "from vllm_fl.configs.layered_text import LayeredTextConfig\n" in model
    data = json.loads((plugin_tree / "reports/layered/summary.json").read_text())
    roles = {f["path"]: f["role"] for f in data["files"]}
    assert roles["vllm_fl/configs/layered_text.py"] == "config" and roles["vllm_fl/configs/layered.py"] == "config"
    assert data["steps"]["6"]["outcome"] == "passed", data["findings"]


def test_an_auto_config_sub_config_the_pin_does_not_know_is_built_by_its_bridged_class(flmigrate, plugin_tree, trees):
    """LayeredVisionConfig (transformers 5, ``@strict``) declares its encoder a sub-config chosen by
    ``model_type="layered_text"``, which the pinned transformers does not know: the bridge builds it
    with the bridged LayeredTextConfig."""
    upstream_dir, pinned_dir = trees
    result = flmigrate("--upstream", str(upstream_dir), "--pinned", str(pinned_dir), "--model", "layered")
    assert result.ret == 0, result.stdout.str()
    vision = (plugin_tree / "vllm_fl/configs/layered_vision.py").read_text()
    assert "from vllm_fl.configs.layered_text import LayeredTextConfig\n" in vision
    assert "SubConfigSpec" not in vision and "else LayeredTextConfig(**self.encoder_config)" in vision
    assert "self.encoder_config = LayeredTextConfig(**{})" in vision


def test_a_model_type_the_pin_lacks_that_a_config_looks_up_itself_is_registered(flmigrate, plugin_tree, trees):
    """LayeredVisionConfig builds its decoder itself, ``CONFIG_MAPPING["layered_decoder"]()``, a type
    the pinned transformers lacks and the bridged file defines: the bridge registers it, at its end."""
    upstream_dir, pinned_dir = trees
    result = flmigrate("--upstream", str(upstream_dir), "--pinned", str(pinned_dir), "--model", "layered")
    assert result.ret == 0, result.stdout.str()
    vision = (plugin_tree / "vllm_fl/configs/layered_vision.py").read_text()
    assert vision.endswith('CONFIG_MAPPING.register("layered_decoder", LayeredDecoderConfig, exist_ok=True)\n')
