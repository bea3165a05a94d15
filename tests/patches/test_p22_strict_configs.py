from textwrap import dedent

import libcst as cst
from packaging.version import Version

from pytest_flmigrate.patches import p22_strict_configs as p22
from pytest_flmigrate.patches.base import patch_from_module
from tests.patches.conftest import patch_context

STRICT_CONFIG = '''\
from dataclasses import field

from huggingface_hub.dataclasses import strict

from ...configuration_utils import PreTrainedConfig
from ...modeling_rope_utils import RopeParameters
from ...utils import auto_docstring, logging


@auto_docstring(checkpoint="org/tiny")
@strict
class TinyConfig(PreTrainedConfig):
    r"""Tiny."""

    model_type = "tiny"
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["past_key_values"]

    vocab_size: int = 32000
    num_hidden_layers: int = 2
    layer_types: list[str] | None = None
    rope_parameters: RopeParameters | dict | None = None
    stops: list[int] = field(default_factory=list)
    extra: dict = {}
    head_dim: int | None

    def __post_init__(self, **kwargs):
        if self.layer_types is None:
            self.layer_types = ["full_attention"] * self.num_hidden_layers
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        self.validate_layer_type()
'''


def test_strict_config_gets_an_init_taking_every_field(rewrite):
    out, count = rewrite(p22, STRICT_CONFIG)
    assert count == 1
    assert out == dedent('''\
        from dataclasses import field

        from ...configuration_utils import PreTrainedConfig
        from ...utils import logging
        from transformers.configuration_utils import layer_type_validation


        class TinyConfig(PreTrainedConfig):
            r"""Tiny."""

            model_type = "tiny"
            keys_to_ignore_at_inference: ClassVar[list[str]] = ["past_key_values"]

            def __init__(
                self,
                vocab_size=32000,
                num_hidden_layers=2,
                layer_types=None,
                rope_parameters=None,
                stops=None,
                extra=None,
                head_dim=None,
                **kwargs,
            ):
                super().__init__(**kwargs)
                self.vocab_size = vocab_size
                self.num_hidden_layers = num_hidden_layers
                self.layer_types = layer_types
                self.rope_parameters = rope_parameters
                self.stops = stops if stops is not None else list()
                self.extra = extra if extra is not None else {}
                self.head_dim = head_dim
                if self.layer_types is None:
                    self.layer_types = ["full_attention"] * self.num_hidden_layers

            def validate_architecture(self):
                if getattr(self, "layer_types", None) is not None:
                    layer_type_validation(self.layer_types, getattr(self, "num_hidden_layers", None))
        ''')


def test_config_without_strict_is_left_alone(rewrite):
    source = dedent("""\
        from ...utils import auto_docstring

        @auto_docstring
        class TinyConfig(PretrainedConfig):
            vocab_size: int = 1
    """)
    assert rewrite(p22, source) == (source, 0)
    assert not p22.relevant(source, patch_context())


def test_one_line_strict_class_declares_no_field_and_is_left_alone(rewrite):
    source = dedent("""\
        @strict
        class TinyConfig(PreTrainedConfig): model_type = "tiny"
    """)
    assert rewrite(p22, source) == (source, 0)


def test_applies_only_to_pins_whose_transformers_is_4():
    """The transformers the pin runs with decides, not the vLLM version: vLLM 0.11.0 allows
    transformers>=4.55.2, and ran with 4.56.2."""
    source = "@strict\nclass TinyConfig(PreTrainedConfig):\n    vocab_size: int = 1\n"
    patch = patch_from_module(p22)
    for vllm in ("0.11.0", "0.13.0", "0.24.0"):
        assert patch.applies_to(Version(vllm))
    assert p22.relevant(source, patch_context(pinned_transformers=Version("4.56.2")))
    assert not p22.relevant(source, patch_context(pinned_transformers=Version("5.12.1")))


ROPE_CONFIG = """\
@strict
class TinyMoeConfig(PreTrainedConfig):
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None

    def __post_init__(self, **kwargs):
        # Validate the correctness of rotary position embeddings parameters
        self.standardize_rope_params()
        self.validate_rope()
        super().__post_init__(**kwargs)

    def convert_rope_params_to_dict(self, **kwargs):
        self.standardize_rope_params()
"""


def test_transformers_5_rope_calls_take_their_transformers_4_spelling(rewrite):
    out, count = rewrite(p22, ROPE_CONFIG)
    assert count == 1
    assert out == dedent("""\
        from transformers.modeling_rope_utils import rope_config_validation
        class TinyMoeConfig(PreTrainedConfig):
            def __init__(
                self,
                rope_theta=10000.0,
                rope_scaling=None,
                **kwargs,
            ):
                super().__init__(**kwargs)
                self.rope_theta = rope_theta
                self.rope_scaling = rope_scaling
                # Validate the correctness of rotary position embeddings parameters
                if isinstance(getattr(self, "rope_scaling", None), dict) and "type" in self.rope_scaling:
                    self.rope_scaling.setdefault("rope_type", self.rope_scaling["type"])
                rope_config_validation(self, ignore_keys=getattr(self, "ignore_keys_at_rope_validation", None))

            def convert_rope_params_to_dict(self, **kwargs):
                pass
        """)


def test_a_method_the_class_overrides_is_called_through_self_as_it_is(rewrite):
    source = dedent("""\
        @strict
        class TinyConfig(PreTrainedConfig):
            rope_theta: float = 1.0

            def __post_init__(self, **kwargs):
                self.validate_rope()

            def validate_rope(self):
                if self.rope_theta <= 0:
                    raise ValueError("rope_theta")
                super().validate_rope()
    """)
    out, _ = rewrite(p22, source)
    assert "        self.validate_rope()\n" in out
    assert "super().validate_rope()" not in out
    assert out.endswith(
        '    raise ValueError("rope_theta")\n'
        '        if isinstance(getattr(self, "rope_scaling", None), dict) and "type" in self.rope_scaling:\n'
        '            self.rope_scaling.setdefault("rope_type", self.rope_scaling["type"])\n'
        '        rope_config_validation(self, ignore_keys=getattr(self, "ignore_keys_at_rope_validation", None))\n'
    )


def test_only_argument_free_calls_on_self_or_super_are_translated(rewrite):
    source = dedent("""\
        @strict
        class TinyConfig(PreTrainedConfig):
            rope_theta: float = 1.0

            def __post_init__(self, **kwargs):
                other.standardize_rope_params()
                self.validate_rope(strict=False)
                x = self.standardize_rope_params()
    """)
    out, _ = rewrite(p22, source)
    assert "other.standardize_rope_params()" in out and "self.validate_rope(strict=False)" in out
    assert "x = self.standardize_rope_params()" in out and "rope_config_validation" not in out


def test_a_validated_field_keeps_its_default_and_loses_its_validator(rewrite):
    source = dedent("""\
        from huggingface_hub.dataclasses import strict

        from ...configuration_utils import PreTrainedConfig
        from ...utils.type_validators import interval, is_divisible_by


        @strict
        class TinyConfig(PreTrainedConfig):
            initializer_range: float = interval(min=0.0, max=1.0)(default=0.02)
            head_dim: int = is_divisible_by(2)()
            threshold: float = interval(min=0.0)(default=0.5)

            def check(self):
                return interval(min=0.0)
    """)
    out, count = rewrite(p22, source)
    assert count == 1
    assert "from ...utils.type_validators import interval\n" in out  # still used by check()
    assert "is_divisible_by" not in out
    assert "initializer_range=0.02,\n" in out and "head_dim=None,\n" in out and "threshold=0.5,\n" in out


def test_sub_config_specs_become_4x_sub_configs_built_where_5x_builds_them(rewrite):
    source = dedent("""\
        from huggingface_hub.dataclasses import strict

        from ...configuration_utils import PreTrainedConfig, SubConfigSpec


        @strict
        class ComboConfig(PreTrainedConfig):
            model_type = "combo"
            sub_configs_defaults = {
                "vision_config": SubConfigSpec(config_class=ComboVisionConfig),
                "text_config": SubConfigSpec(config_class=ComboTextConfig, init_kwargs={"vocab_size": 8}),
                "audio_config": SubConfigSpec(config_class=ComboAudioConfig, optional=True),
            }

            text_config: dict | PreTrainedConfig | None = None
            vision_config: dict | PreTrainedConfig | None = None
            audio_config: dict | PreTrainedConfig | None = None
            tie: bool = False

            def __post_init__(self, **kwargs):
                self.tie = bool(self.tie)
                super().__post_init__(**kwargs)
                self.text_config.tie = self.tie
    """)
    out, count = rewrite(p22, source)
    assert count == 1 and "SubConfigSpec" not in out
    # an optional sub-config may stay None, which transformers 4 fails to diff as a sub-config
    assert '    sub_configs = {"vision_config": ComboVisionConfig, "text_config": ComboTextConfig}\n' in out
    body = [
        "self.tie = bool(self.tie)",
        "if isinstance(self.vision_config, dict):",
        "    self.vision_config = ComboVisionConfig(**self.vision_config)",
        "elif self.vision_config is None:",
        "    self.vision_config = ComboVisionConfig(**{})",
        "if isinstance(self.text_config, dict):",
        "    self.text_config = ComboTextConfig(**self.text_config)",
        "elif self.text_config is None:",
        '    self.text_config = ComboTextConfig(**{"vocab_size": 8})',
        "if isinstance(self.audio_config, dict):",
        "    self.audio_config = ComboAudioConfig(**self.audio_config)",
        "self.text_config.tie = self.tie",
    ]
    assert out.endswith("".join(f"        {line}\n" for line in body))
    compile(out, "combo.py", "exec")


def test_sub_configs_without_post_init_are_built_after_the_fields_and_auto_config_is_left(rewrite):
    source = dedent("""\
        from huggingface_hub.dataclasses import strict


        @strict
        class ComboConfig(PreTrainedConfig):
            sub_configs_defaults = {"text_config": SubConfigSpec(config_class=ComboTextConfig)}
            text_config: dict | None = None
    """)
    out, _ = rewrite(p22, source)
    assert out.endswith(
        "        self.text_config = text_config\n"
        "        if isinstance(self.text_config, dict):\n"
        "            self.text_config = ComboTextConfig(**self.text_config)\n"
        "        elif self.text_config is None:\n"
        "            self.text_config = ComboTextConfig(**{})\n"
    )
    auto = source.replace(
        "SubConfigSpec(config_class=ComboTextConfig)", 'SubConfigSpec(config_class=AutoConfig, model_type="llama")'
    )
    assert "sub_configs_defaults = {" in rewrite(p22, auto)[0]  # the pin's model_types are not known here


def test_an_auto_config_sub_config_the_pin_knows_is_built_from_config_mapping():
    source = dedent("""\
        from huggingface_hub.dataclasses import strict

        from ..auto import AutoConfig


        @strict
        class ComboConfig(PreTrainedConfig):
            sub_configs_defaults = {
                "text_config": SubConfigSpec(config_class=AutoConfig, model_type="deepseek_v3"),
                "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="combo_vision"),
            }
            text_config: dict | None = None
            vision_config: dict | None = None
    """)
    only_one = p22.Transformer(patch_context(transformers_model_types=frozenset({"deepseek_v3"})))
    assert "sub_configs_defaults" in cst.parse_module(source).visit(only_one).code  # combo_vision: unknown
    both = p22.Transformer(patch_context(transformers_model_types=frozenset({"deepseek_v3", "combo_vision"})))
    out = cst.parse_module(source).visit(both).code
    assert '    sub_configs = {"text_config": AutoConfig, "vision_config": AutoConfig}\n' in out
    assert "from transformers.models.auto.configuration_auto import CONFIG_MAPPING\n" in out
    assert (
        '            self.text_config = CONFIG_MAPPING[self.text_config.get("model_type", "deepseek_v3")]'
        "(**self.text_config)\n" in out
    )
    assert '            self.text_config = CONFIG_MAPPING["deepseek_v3"](**{})\n' in out
    compile(out, "combo.py", "exec")


class FakeConfig:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


class ComboVisionConfig(FakeConfig):
    pass


class LlamaConfig(FakeConfig):
    pass


class FakeConfigMapping(dict):
    def register(self, key, value, exist_ok=False):
        self[key] = value


def executed(code: str) -> dict:
    """The names a rewritten config module defines, run with stand-ins for what it imports."""
    namespace = {
        "PreTrainedConfig": FakeConfig,
        "AutoConfig": object,
        "ComboVisionConfig": ComboVisionConfig,
        "CONFIG_MAPPING": FakeConfigMapping(llama=LlamaConfig),
    }
    exec("\n".join(line for line in code.splitlines() if "import" not in line), namespace)
    return namespace


def assert_builds_combo_sub_configs(combo_config: type) -> None:
    """ComboConfig's vision sub-config is ComboVisionConfig by default and from a dict naming its
    type; its audio sub-config is the file's own ComboAudioConfig."""
    default = combo_config()
    assert type(default.vision_config) is ComboVisionConfig
    assert type(default.audio_config).__name__ == "ComboAudioConfig"
    loaded = combo_config(vision_config={"model_type": "combo_vision", "depth": 2})
    assert type(loaded.vision_config) is ComboVisionConfig and loaded.vision_config.depth == 2


def test_an_auto_config_sub_config_the_pin_does_not_know_is_built_by_its_class():
    """combo_vision is unknown to the pinned transformers: the class upstream maps it to builds the
    sub-config (imported from the bridge where another module defines it; used as it is where this
    file does), unless the dict names a model_type the pin knows."""
    source = dedent("""\
        from huggingface_hub.dataclasses import strict

        from ..auto import AutoConfig


        @strict
        class ComboAudioConfig(PreTrainedConfig):
            model_type = "combo_audio"
            width: int = 8


        @strict
        class ComboConfig(PreTrainedConfig):
            sub_configs_defaults = {
                "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="combo_vision"),
                "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="combo_audio"),
            }
            vision_config: dict | None = None
            audio_config: dict | None = None
    """)
    vision = "transformers.models.combo.configuration_combo_vision"
    context = patch_context(
        module="transformers.models.combo.configuration_combo",
        module_map={vision: "vllm_fl.configs.combo_vision"},
        sub_config_classes={
            "combo_vision": (vision, "ComboVisionConfig"),
            "combo_audio": ("transformers.models.combo.configuration_combo", "ComboAudioConfig"),
        },
    )
    out = cst.parse_module(source).visit(p22.Transformer(context)).code
    assert "sub_configs_defaults" not in out
    assert "from vllm_fl.configs.combo_vision import ComboVisionConfig\n" in out
    assert "import ComboAudioConfig" not in out

    namespace = executed(out)
    assert_builds_combo_sub_configs(namespace["ComboConfig"])
    assert type(namespace["ComboConfig"](vision_config={"model_type": "llama"}).vision_config) is LlamaConfig


def test_a_model_type_the_pin_lacks_looked_up_in_config_mapping_is_registered_with_its_class():
    """Cosmos 3's config builds its vision sub-config itself, ``CONFIG_MAPPING["qwen3_vl_vision"]``:
    transformers 4.57 has the class (Qwen3VLVisionConfig) but not the type. The bridge registers
    the type with the pin's class after its imports, and a class it defines itself at its end; a
    type the pin knows or has no class for is left to the pin."""
    source = dedent("""\
        from huggingface_hub.dataclasses import strict

        from ..auto import CONFIG_MAPPING, AutoConfig


        @strict
        class ComboConfig(PreTrainedConfig):
            vision_config: dict | None = None
            audio_config: dict | None = None

            def __post_init__(self, **kwargs):
                if isinstance(self.vision_config, dict):
                    model_type = self.vision_config.pop("model_type", "combo_vision")
                    self.vision_config = CONFIG_MAPPING[model_type](**self.vision_config)
                elif self.vision_config is None:
                    self.vision_config = CONFIG_MAPPING["combo_vision"]()
                if self.audio_config is None:
                    self.audio_config = CONFIG_MAPPING["combo_audio"]()
                self.text_config = CONFIG_MAPPING["llama"]()
                super().__post_init__(**kwargs)


        @strict
        class ComboAudioConfig(PreTrainedConfig):
            model_type = "combo_audio"
            width: int = 8
    """)
    module = "transformers.models.combo.configuration_combo"
    assert p22.mapped_model_types(cst.parse_module(source)) == {"combo_vision", "combo_audio", "llama"}
    context = patch_context(
        module=module,
        transformers_model_types=frozenset({"llama"}),
        sub_config_classes={
            "combo_vision": ("transformers.models.combo_vl.configuration_combo_vl", "ComboVisionConfig"),
            "combo_audio": (module, "ComboAudioConfig"),
        },
    )
    out = cst.parse_module(source).visit(p22.Transformer(context)).code
    assert (
        "from ..auto import CONFIG_MAPPING, AutoConfig\n"
        "from transformers.models.combo_vl.configuration_combo_vl import ComboVisionConfig\n"
        'CONFIG_MAPPING.register("combo_vision", ComboVisionConfig, exist_ok=True)\n'
    ) in out
    assert out.endswith('CONFIG_MAPPING.register("combo_audio", ComboAudioConfig, exist_ok=True)\n')
    assert 'register("llama"' not in out

    namespace = executed(out)
    assert_builds_combo_sub_configs(namespace["ComboConfig"])

    unregistered = cst.parse_module(source).visit(p22.Transformer(patch_context(module=module))).code
    assert ".register(" not in unregistered  # without a class for the types: left to the pin


def test_a_plain_config_loses_the_sub_configs_its_init_may_leave_none(rewrite):
    """transformers 4 diffs each ``sub_configs`` entry as a config when it prints or saves one, and
    fails on one left None (a text-only Gemma 4's vision and audio configs)."""
    source = dedent("""\
        class ComboConfig(PreTrainedConfig):
            sub_configs = {
                "text_config": ComboTextConfig,
                "vision_config": ComboVisionConfig,
                "audio_config": ComboAudioConfig,
            }

            def __init__(self, text_config=None, vision_config=None, audio_config=None, **kwargs):
                super().__init__(**kwargs)
                self.text_config = text_config
                if self.text_config is None:
                    self.text_config = ComboTextConfig()
                elif isinstance(self.text_config, dict):
                    self.text_config = ComboTextConfig(**self.text_config)
                if audio_config is None:
                    audio_config = ComboAudioConfig()
                self.audio_config = audio_config
                if self.vision_config is None:
                    logger.info("no vision tower")
                if isinstance(vision_config, dict):
                    vision_config = ComboVisionConfig(**vision_config)
                self.vision_config = vision_config
    """)
    out, count = rewrite(p22, source)
    assert count == 1
    assert (
        '    sub_configs = {\n        "text_config": ComboTextConfig,\n        "audio_config": ComboAudioConfig\n    }'
        in out
    )
    compile(out, "combo.py", "exec")
    built = source.replace('logger.info("no vision tower")', "self.vision_config = ComboVisionConfig()")
    assert rewrite(p22, built) == (built, 0)


def test_a_strict_config_declaring_sub_configs_itself_loses_those_its_post_init_may_leave_none(rewrite):
    source = dedent("""\
        from huggingface_hub.dataclasses import strict


        @strict
        class ComboConfig(PreTrainedConfig):
            sub_configs = {"text_config": ComboTextConfig, "vision_config": ComboVisionConfig}
            text_config: dict | None = None
            vision_config: dict | None = None

            def __post_init__(self, **kwargs):
                if self.text_config is None:
                    self.text_config = ComboTextConfig()
                if isinstance(self.vision_config, dict):
                    self.vision_config = ComboVisionConfig(**self.vision_config)
                super().__post_init__(**kwargs)
    """)
    out, count = rewrite(p22, source)
    assert count == 1
    assert '    sub_configs = {"text_config": ComboTextConfig}\n' in out


PER_LAYER = dedent("""\
    from huggingface_hub.dataclasses import strict

    from ...configuration_utils import PreTrainedConfig


    @strict
    class LayeredConfig(PreTrainedConfig):
        num_hidden_layers: int = 3
        head_dim: int = 8
        layer_types: list[str] | None = None

        def __post_init__(self, **kwargs):
            if self.layer_types is None:
                self.layer_types = ["sliding_attention", "full_attention", "sliding_attention"]
            if "per_layer_config" not in kwargs:
                kwargs["per_layer_config"] = {
                    index: {"head_dim": 32} for index, kind in enumerate(self.layer_types) if kind == "full_attention"
                }
            super().__post_init__(**kwargs)
""")


class Base4:
    """transformers 4's ``PretrainedConfig`` as far as the views use it: unknown kwargs become
    attributes, ``to_dict`` copies them."""

    def __init__(self, **kwargs):
        for key, value in kwargs.items():
            setattr(self, key, value)

    def to_dict(self):
        return dict(self.__dict__)


def test_per_layer_config_views_work_on_a_transformers_4_config(rewrite):
    """Gemma 4's global attention layers: ``config.per_layer_config[i]`` gives layer ``i``'s
    ``head_dim``; transformers 5's base applied the kwarg last, the 4.x ``__init__`` does it."""
    out, count = rewrite(p22, PER_LAYER)
    assert count == 1 and "class LayeredConfig(_PerLayerConfigs, PreTrainedConfig):" in out
    namespace: dict = {"PreTrainedConfig": Base4}
    exec(out.replace("from ...configuration_utils import PreTrainedConfig\n", ""), namespace)
    config = namespace["LayeredConfig"]()
    assert [layer.head_dim for layer in config.per_layer_config] == [8, 32, 8] and config.head_dim == 8
    saved = config.to_dict()
    assert saved["per_layer_config"] == {"1": {"head_dim": 32}} and "_per_layer_overrides" not in saved
    again = namespace["LayeredConfig"](per_layer_config=saved["per_layer_config"])  # as from config.json
    assert [layer.head_dim for layer in again.per_layer_config] == [8, 32, 8]
    assert rewrite(p22, PER_LAYER.replace("per_layer_config", "layer_overrides"))[0].count("_PerLayerConfigs") == 0
