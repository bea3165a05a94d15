"""config-bridge and registration: positive and negative cases."""

from __future__ import annotations

import textwrap

from tests.unit.review.conftest import PLUGIN_INIT, symbols_of

MODEL = "vllm_fl/models/newmodel.py"
BRIDGE = "vllm_fl/configs/newmodel.py"
BRIDGE_CONTEXT = {
    "bridge": ("newmodel", "NewConfig", "vllm_fl.configs.newmodel"),
    "model_type": "newmodel",
    "config_class": "NewConfig",
}

GOOD_BRIDGE = textwrap.dedent(
    """
    from transformers import PretrainedConfig

    class NewVisionConfig(PretrainedConfig):
        model_type = "newmodel_vision"
        def __init__(self, depth=2, **kwargs):
            super().__init__(**kwargs)
            self.depth = depth

    class NewConfig(PretrainedConfig):
        model_type = "newmodel"
        attribute_map = {"num_local_experts": "num_experts"}
        def __init__(self, vision_config=None, hidden_size=64, num_experts=4, rope_theta=1e6, **kwargs):
            super().__init__(**kwargs)
            self.hidden_size = hidden_size
            self.num_experts = num_experts
            self.rope_theta = rope_theta
            self.vision_config = NewVisionConfig(**(vision_config or {}))
    """
)
READS = textwrap.dedent(
    """
    def build(config, vllm_config):
        hf_config = vllm_config.model_config.hf_config
        size = config.hidden_size + hf_config.num_local_experts
        depth = config.vision_config.depth
        tie = config.tie_word_embeddings
        optional = getattr(config, "head_dim", None)
        if hasattr(config, "sliding_window"):
            optional = config.sliding_window
        return size, depth, tie, optional
    """
)


def test_consistent_bridge_and_reads_pass(review_files):
    findings = review_files({BRIDGE: GOOD_BRIDGE, MODEL: READS}, "config-bridge", **BRIDGE_CONTEXT)
    assert findings == []


def test_reads_of_fields_missing_or_without_default(review_files):
    bridge = GOOD_BRIDGE.replace("vision_config=None, hidden_size=64,", "hidden_size, vision_config=None,")
    reads = READS + "\nx = config.moe_topk\n"
    findings = {f.symbol: f for f in review_files({BRIDGE: bridge, MODEL: reads}, "config-bridge", **BRIDGE_CONTEXT)}
    assert set(findings) == {"config.hidden_size", "config.moe_topk"}
    assert "NewConfig.__init__ takes hidden_size without a default" in findings["config.hidden_size"].message
    assert "no config class of vllm_fl.configs.newmodel defines moe_topk" in findings["config.moe_topk"].message
    assert findings["config.moe_topk"].file == MODEL


def test_reads_gated_by_an_attribute_no_config_class_defines_are_unreachable(review_files):
    """mistral: ``if getattr(config, "ada_rms_norm_t_cond", False):`` guards the read of
    ``ada_rms_norm_t_cond_dim``; a config without the gate never reaches it. A gate the config
    defines, or the same field read outside the branch too, still counts."""
    gated = textwrap.dedent(
        """
        def build(config):
            if getattr(config, "ada_cond", False):
                width = config.ada_cond_dim
            if getattr(config, "hidden_size", 0):
                width = config.moe_topk
            if hasattr(config, "odd_gate"):
                width = config.odd_dim
            return config.odd_dim if width else None
        """
    )
    findings = review_files({BRIDGE: GOOD_BRIDGE, MODEL: gated}, "config-bridge", **BRIDGE_CONTEXT)
    assert symbols_of(findings) == [("config-bridge", "config.moe_topk"), ("config-bridge", "config.odd_dim")]


def test_rope_parameters_count_as_provided_when_the_pinned_loader_builds_them(review_files):
    """vLLM's patch_rope_parameters sets config.rope_parameters from rope_theta / rope_scaling."""
    reads = READS + "\nrope = config.rope_parameters\n"
    assert review_files({BRIDGE: GOOD_BRIDGE, MODEL: reads}, "config-bridge", **BRIDGE_CONTEXT) == []
    without_rope = GOOD_BRIDGE.replace(", rope_theta=1e6", "").replace("self.rope_theta = rope_theta", "pass")
    findings = review_files({BRIDGE: without_rope, MODEL: reads}, "config-bridge", **BRIDGE_CONTEXT)
    assert symbols_of(findings) == [("config-bridge", "config.rope_parameters")]


def test_a_dict_made_from_the_config_is_not_read_as_the_config(review_files):
    """paddleocr_vl: ``text_config = config.text_config.to_dict()`` then ``text_config.pop(key)``: a
    dict's methods are not config fields. The same name read before it holds the dict, or in
    another function, is still the config."""
    reads = textwrap.dedent(
        """
        import copy

        def build(vllm_config):
            config = vllm_config.model_config.hf_config
            text_config = config.vision_config
            depth = text_config.depth
            text_config = config.vision_config.to_dict()
            for key in ("model_type", "architectures"):
                text_config.pop(key, None)
            config = copy.deepcopy(dict(hidden_size=config.hidden_size))
            return depth, config.get("hidden_size"), config.items(), text_config.keys()

        def other(config):
            return config.pop_size
        """
    )
    findings = review_files({BRIDGE: GOOD_BRIDGE, MODEL: reads}, "config-bridge", **BRIDGE_CONTEXT)
    assert symbols_of(findings) == [("config-bridge", "config.pop_size")]


def test_a_finding_in_code_two_files_share_is_reported_once(review_files):
    """A model and a copy sharing its code: each finding once, naming the other place."""
    reads = READS + "\nx = config.moe_topk\n"
    copy = "vllm_fl/models/newmodel_copy.py"
    files = {BRIDGE: GOOD_BRIDGE, MODEL: reads, copy: "# a copy\n" + reads}
    findings = review_files(files, "config-bridge", **BRIDGE_CONTEXT)
    assert [(f.file, f.symbol) for f in findings] == [(MODEL, "config.moe_topk")]
    line = reads.splitlines().index("x = config.moe_topk") + 1
    assert findings[0].message.endswith(f"; the same code in {copy}:{line + 1}")
    # a finding on different code is not a duplicate
    files[copy] = reads.replace("x = config.moe_topk", "y = config.moe_topk")
    assert [f.file for f in review_files(files, "config-bridge", **BRIDGE_CONTEXT)] == [MODEL, copy]


def test_a_config_class_in_model_code_is_checked_alone(review_files):
    """A config class defined at run time in the model file is registered from there: the bridge
    checks run on the model file, and only that class's fields count as provided (not the model
    classes' attributes beside it)."""
    model = textwrap.dedent(
        """
        from transformers import PretrainedConfig

        class NewConfig(PretrainedConfig):
            model_type = "newmodel"
            def __init__(self, hidden_size=64, **kwargs):
                super().__init__(**kwargs)
                self.hidden_size = hidden_size

        class NewForCausalLM:
            moe_topk = 2
            def __init__(self, config):
                self.size = config.hidden_size + config.moe_topk
        """
    )
    context = {**BRIDGE_CONTEXT, "bridge": ("newmodel", "NewConfig", "vllm_fl.models.newmodel")}
    findings = review_files({MODEL: model}, "config-bridge", **context)
    assert symbols_of(findings) == [("config-bridge", "config.moe_topk")]
    assert findings[0].file == MODEL


def test_hasattr_of_a_field_the_bridge_sets_to_none_is_always_true(review_files):
    bridge = GOOD_BRIDGE.replace("rope_theta=1e6, **kwargs", "rope_theta=1e6, sliding_window=None, **kwargs")
    bridge = bridge.replace(
        "self.rope_theta = rope_theta", "self.rope_theta = rope_theta\n        self.sliding_window = sliding_window"
    )
    findings = review_files({BRIDGE: bridge, MODEL: READS}, "config-bridge", **BRIDGE_CONTEXT)
    assert symbols_of(findings) == [("config-bridge", "config.sliding_window")]
    assert findings[0].line == 7  # READS starts with a blank line
    assert "hasattr(config, 'sliding_window') is always true" in findings[0].message
    assert "getattr(config, 'sliding_window', None) is not None" in findings[0].fix


def test_bridge_with_wrong_model_type_base_and_no_init(review_files):
    bridge = textwrap.dedent(
        """
        from transformers import PreTrainedConfig

        class NewConfig(PreTrainedConfig):
            model_type = "newmodel_text"
            hidden_size: int = 64
        """
    )
    findings = review_files({BRIDGE: bridge}, "config-bridge", **BRIDGE_CONTEXT)
    assert symbols_of(findings) == [
        ("config-bridge", "NewConfig"),
        ("config-bridge", "NewConfig.model_type"),
        ("config-bridge", "NewConfig.__init__"),
    ]
    assert findings[0].fix == "P14"
    assert "model_type is 'newmodel_text', the checkpoint's is 'newmodel'" in findings[1].message


def test_bridge_missing_its_class(review_files):
    findings = review_files({BRIDGE: "X = 1\n"}, "config-bridge", **BRIDGE_CONTEXT)
    assert symbols_of(findings) == [("config-bridge", "NewConfig")]


MODEL_CLASSES = "import torch.nn as nn\nclass NewForCausalLM(nn.Module):\n    pass\n"
REGISTRATION = {
    "architectures": (("NewForCausalLM", "NewForCausalLM"),),
    "plugin_module": "vllm_fl.models.newmodel",
    "bridge": ("newmodel", "NewConfig", "vllm_fl.configs.newmodel"),
}


def registered(arch_target: str, config_target: str | None) -> str:
    lines = [
        "    from vllm import ModelRegistry",
        f'    ModelRegistry.register_model("NewForCausalLM", "{arch_target}")',
    ]
    if config_target:
        module, name = config_target.split(":")
        lines = [
            "    from vllm.transformers_utils.config import _CONFIG_REGISTRY",
            f"    from {module} import {name}",
            f'    _CONFIG_REGISTRY["newmodel"] = {name}',
            *lines,
        ]
    return PLUGIN_INIT.replace("    from vllm import ModelRegistry  # noqa: F401", "\n".join(lines))


def test_registration_consistent(review_files):
    files = {
        MODEL: MODEL_CLASSES,
        BRIDGE: GOOD_BRIDGE,
        "vllm_fl/__init__.py": registered(
            "vllm_fl.models.newmodel:NewForCausalLM", "vllm_fl.configs.newmodel:NewConfig"
        ),
    }
    assert review_files(files, "registration", **REGISTRATION) == []


def test_registration_missing_or_pointing_at_nothing(review_files):
    files = {MODEL: MODEL_CLASSES, BRIDGE: GOOD_BRIDGE, "vllm_fl/__init__.py": PLUGIN_INIT}
    findings = review_files(files, "registration", **REGISTRATION)
    assert symbols_of(findings) == [("registration", "NewForCausalLM"), ("registration", "newmodel")]
    assert all(f.file == "vllm_fl/__init__.py" for f in findings)
    files["vllm_fl/__init__.py"] = registered(
        "vllm_fl.models.newmodel:NewForCausalLMX", "vllm_fl.configs.newmodel:NewConfig"
    )
    findings = review_files(files, "registration", **REGISTRATION)
    assert [f.message.split(";")[0] for f in findings] == [
        "registered as vllm_fl.models.newmodel:NewForCausalLMX, expected vllm_fl.models.newmodel:NewForCausalLM",
        "vllm_fl.models.newmodel:NewForCausalLMX: vllm_fl.models.newmodel has no NewForCausalLMX",
    ]


def test_registration_of_a_config_the_module_binds_only_for_type_checkers(review_files):
    """A config class upstream defines only under TYPE_CHECKING is absent at run time: importing it
    in register_model() fails, and the try block would only log that (the architecture is lost too)."""
    model = MODEL_CLASSES + "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    class NewConfig: ...\n"
    files = {
        MODEL: model,
        "vllm_fl/__init__.py": registered(
            "vllm_fl.models.newmodel:NewForCausalLM", "vllm_fl.models.newmodel:NewConfig"
        ),
    }
    context = {**REGISTRATION, "bridge": ("newmodel", "NewConfig", "vllm_fl.models.newmodel")}
    findings = review_files(files, "registration", **context)
    assert [(f.symbol, f.message.split(";")[0]) for f in findings] == [
        (
            "from vllm_fl.models.newmodel import NewConfig",
            "vllm_fl.models.newmodel binds NewConfig only under TYPE_CHECKING (absent at run time)",
        ),
        (
            "newmodel",
            "vllm_fl.models.newmodel:NewConfig: vllm_fl.models.newmodel binds NewConfig only under "
            "TYPE_CHECKING (absent at run time)",
        ),
    ]


def test_registration_importing_a_config_module_that_was_never_written(review_files):
    files = {
        MODEL: MODEL_CLASSES,
        "vllm_fl/__init__.py": registered(
            "vllm_fl.models.newmodel:NewForCausalLM", "vllm_fl.configs.newmodel:NewConfig"
        ),
    }
    findings = review_files(files, "registration", **REGISTRATION)
    assert {f.message.split(";")[0] for f in findings} == {
        "no module vllm_fl.configs.newmodel",
        "vllm_fl.configs.newmodel:NewConfig: no module vllm_fl.configs.newmodel",
    }


def test_an_architecture_upstream_configures_at_startup_needs_its_hook_at_the_pin(review_files):
    """Upstream's MODELS_CONFIG_MAP sets NewForCausalLM's attention bidirectional at startup; the
    pin's map has no entry for it: without a hook registered by the plugin, the pin runs it causal."""
    files = {MODEL: MODEL_CLASSES, "vllm_fl/__init__.py": registered("vllm_fl.models.newmodel:NewForCausalLM", None)}
    (finding,) = review_files(files, "config-hooks", **REGISTRATION)
    assert (finding.file, finding.symbol) == ("vllm_fl/__init__.py", "NewForCausalLM")
    assert finding.message.startswith(
        "upstream configures NewForCausalLM at startup with vllm.model_executor.models.config.NewModelConfig "
        "(it sets hf_config.is_causal, hf_config.embedding_size); the pin's MODELS_CONFIG_MAP has no entry for it"
    )
    assert 'MODELS_CONFIG_MAP["NewForCausalLM"] = <the port>' in finding.fix
    unfixed = {("vllm.model_executor.models.config", "NewModelConfig"): "it calls torch.ops kernels"}
    (finding,) = review_files(files, "config-hooks", unfixed=unfixed, **REGISTRATION)
    assert finding.message.endswith("; step 4 could not copy it: it calls torch.ops kernels")
    hooked = files["vllm_fl/__init__.py"] + (
        "    from vllm.model_executor.models.config import MODELS_CONFIG_MAP\n"
        "    from vllm_fl.configs.hooks import NewModelConfig\n"
        '    MODELS_CONFIG_MAP["NewForCausalLM"] = NewModelConfig\n'
    )
    assert review_files({**files, "vllm_fl/__init__.py": hooked}, "config-hooks", **REGISTRATION) == []
    # an architecture the pin's own map configures keeps the pin's hook
    old = {**REGISTRATION, "architectures": (("OldForCausalLM", "NewForCausalLM"),)}
    assert review_files(files, "config-hooks", **old) == []


def test_an_unparseable_register_model_is_one_line_for_config_hooks(review_files):
    files = {MODEL: MODEL_CLASSES, "vllm_fl/__init__.py": "def register_model(:\n"}
    (finding,) = review_files(files, "config-hooks", **REGISTRATION)
    assert (finding.message, finding.fix) == ("the file does not parse", "manual: fix the syntax")
