"""A tiny config built from a config class gets, for the fields upstream's code reads that the class
leaves absent or None, the values an inferred config would give them (tiny/infer.py's
``fills_of``, set by tiny/synthesize.py's ``fill_missing``); what the class sets stays. Each config
class and model source here is a small synthetic one."""

from __future__ import annotations

import json

from pytest_flmigrate.report import markdown
from pytest_flmigrate.tiny import checkpoints, infer, qwen2_checkpoint, shrink, synthesize

MODEL = """
from vllm.model_executor.layers.fused_moe import FusedMoE


class Layer:
    def __init__(self, config):
        self.streams = [Stream() for _ in range(config.hc_mult)]
        self.experts = FusedMoE(renormalize=config.route_norm)
        if config.mhc:
            self.mix = None
        self.sliding = config.hybrid_layer_pattern[0] == 1
        self.gate = getattr(config, "output_gate_type", "silu")
        self.window = config.window if config.window is not None else 0
        self.embed = config.projector_config.n_embed * 2
        self.width = config.vision_config.width // 2
        self.rope = config.rope_parameters
"""


def signature(name):
    return [("renormalize", "bool", "True", True)] if name == "FusedMoE" else None


class Config:
    """A config class as transformers' behave here: attributes, ``to_dict``, a text config."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def to_dict(self):
        return dict(self.__dict__)

    def get_text_config(self):
        return self.__dict__.get("text_config", self)


def fills() -> dict:
    return infer.fills_of(infer.config_reads([MODEL], signature))


def test_fields_the_class_leaves_absent_get_their_role_default_or_use():
    config = Config(text_config=Config())
    filled = synthesize.fill_missing(config, fills())
    assert (config.hc_mult, config.route_norm, config.mhc) == (infer.COUNT, True, False)
    assert config.hybrid_layer_pattern == [infer.COUNT, infer.COUNT]
    assert config.rope_parameters == {"rope_type": "default", "rope_theta": 10000.0}
    assert not hasattr(config, "output_gate_type")  # absent, the code takes its own default
    assert "hc_mult=4 (a count)" in filled
    assert "route_norm=True (a truth value: the default of the parameter it is passed to)" in filled
    # vLLM builds the language model with the text config: a top-level read is filled there too
    assert config.text_config.rope_parameters == config.rope_parameters
    assert "text_config.rope_parameters={rope_theta, rope_type} (its role)" in filled
    assert not hasattr(config.text_config, "projector_config")  # a sub-config stays where it is read


def test_a_none_is_replaced_only_where_the_code_cannot_take_it():
    config = Config(hc_mult=None, output_gate_type=None, window=None, mhc=None, route_norm=None)
    synthesize.fill_missing(config, fills())
    assert config.hc_mult == infer.COUNT  # a count: None cannot serve
    assert config.output_gate_type == "silu"  # read with a default: None stands for it
    assert config.window is None  # the code tests ``is not None``: None means something there
    assert config.mhc is None and config.route_norm is None  # truth values: None is off


def test_values_the_class_sets_stay():
    config = Config(hc_mult=8, route_norm=False, hybrid_layer_pattern=[1, 0], output_gate_type="sigmoid")
    synthesize.fill_missing(config, fills())
    assert (config.hc_mult, config.route_norm, config.hybrid_layer_pattern) == (8, False, [1, 0])
    assert config.output_gate_type == "sigmoid"


def test_a_sub_config_left_absent_none_or_a_dict_becomes_a_config_object():
    config = Config(vision_config={"width": 64, "depth": 3}, projector_config=None)
    filled = synthesize.fill_missing(config, fills())
    assert config.vision_config.width == 64 and config.vision_config.depth == 3  # the class's values kept
    assert config.projector_config.n_embed == infer.COUNT
    assert "projector_config={} (read by attribute: a sub-config)" in filled
    assert "projector_config.n_embed=4 (a count)" in filled


def test_without_the_fills_the_class_config_lacks_what_the_code_reads():
    config = Config(hc_mult=None, vision_config={"width": 64})
    assert synthesize.fill_missing(config, {}) == []
    assert config.hc_mult is None and isinstance(config.vision_config, dict)


def test_a_field_nothing_values_gets_no_fill():
    found = infer.fills_of(infer.config_reads(["def f(config):\n    return config.hc_sinkhorn_iters\n"]))
    assert "hc_sinkhorn_iters" not in found  # upstream's code then fails naming it (CONTROL_GAPS)


def test_the_filled_fields_are_in_summary_json_and_the_report_line(tmp_path):
    tiny = checkpoints.TinyModel(
        tmp_path,
        "XForCausalLM",
        True,
        "",
        7,
        {"kind": "upstream", "text": "upstream vLLM: m.XConfig"},
        "transformers.XForCausalLM",
        filled=("hc_mult=4 (a count)", "mhc=False (a truth value: off)"),
    )
    data = tiny.as_dict()
    assert data["config_source"]["filled"] == ["hc_mult=4 (a count)", "mhc=False (a truth value: off)"]
    line = markdown._tiny_lines(data)[0]
    assert "left absent or None there, inferred from upstream's code: hc_mult, mhc" in line


class AllOrNone(Config):
    """A class whose indexer fields are all set or all None, checked when it loads (as
    Qwen4ExpTextConfig's validator does)."""

    def __init__(self, **values):
        super().__init__(**values)
        given = [self.__dict__.get(name) is not None for name in ("index_heads", "index_budget")]
        if any(given) and not all(given):
            raise ValueError("the indexer fields are all set or all None")

    @classmethod
    def from_dict(cls, values):
        return cls(**values)


def test_a_none_replacement_the_class_does_not_load_back_is_left_out():
    found = infer.fills_of(
        infer.config_reads(
            [
                "def f(config):\n"
                "    heads = config.index_heads if config.index_heads is not None else 0\n"
                "    return range(config.index_budget), range(config.hc_mult)\n"
            ]
        )
    )
    assert found["index_budget"]["none"] and "index_heads" not in found  # tested for None only: no value
    config, filled = synthesize.filled_config(AllOrNone, {"index_heads": None, "index_budget": None}, found)
    assert config.index_budget is None  # setting it alone leaves a config its class refuses to load
    assert filled == ["hc_mult=4 (a count)"]  # an absent field's fill stays


def test_a_layer_module_is_read_when_the_unit_gives_it_the_config():
    from pytest_flmigrate.tiny import usage

    source = (
        "from vllm.model_executor.layers.linear import ReplicatedLinear\n"
        "from vllm.model_executor.layers.mamba.gdn import GatedDeltaNet\n"
        "class Layer:\n"
        "    def __init__(self, config, text_config):\n"
        "        self.proj = ReplicatedLinear(config.hidden_size, 4)\n"
        "        self.attn = GatedDeltaNet(config, prefix='x')\n"
        "        self.other = Other(config=text_config)\n"
    )
    assert usage.config_callees(source) == {"GatedDeltaNet", "Other"}


def test_a_count_passed_to_a_parameter_named_as_a_size_takes_that_size():
    found = infer.fills_of(
        infer.config_reads(
            [
                "class MLP:\n"
                "    def __init__(self, dim: int, multiple_of: int):\n"
                "        self.dim = dim\n"
                "class Block:\n"
                "    def __init__(self, config):\n"
                "        self.mlp = MLP(dim=config.block_dim, multiple_of=config.block_multiple_of)\n"
            ]
        )
    )
    assert found["block_dim"]["value"] == shrink.HIDDEN  # the MLP's width is the model's
    assert found["block_dim"]["why"] == "a count: the size its parameter dim names"
    assert found["block_multiple_of"]["value"] == infer.COUNT


def test_the_model_types_a_config_module_makes_sub_configs_of():
    from pytest_flmigrate.tiny import usage

    source = (
        "class VlConfig:\n"
        "    def __post_init__(self):\n"
        "        self.vision_config = CONFIG_MAPPING['siglip2_vision_model']()\n"
        "        self.text_config = CONFIG_MAPPING['lfm2']()\n"
    )
    assert usage.mapped_model_types(source) == ["siglip2_vision_model", "lfm2"]


def test_a_field_tested_for_presence_or_read_with_a_computed_default_gets_no_fill():
    found = infer.fills_of(
        infer.config_reads(
            [
                "def f(config):\n"
                "    sparse = hasattr(config, 'index_topk')\n"
                "    topk = config.index_topk if sparse else 0\n"
                "    per_layer = getattr(config, 'vocab_size_per_layer_input', config.vocab_size)\n"
                "    return range(topk), range(per_layer)\n"
            ]
        )
    )
    assert "index_topk" not in found  # filling it would switch the code's sparse path on
    assert "vocab_size_per_layer_input" not in found


def test_a_top_level_field_the_text_config_has_takes_its_value_at_the_top():
    """Exaone 4.5's MTP head reads ``vocab_size`` at the top, its target from the text config: both
    read the text config's value, never a role's other one."""
    config = Config(text_config=Config(hc_mult=8))
    filled = synthesize.fill_missing(config, fills())
    assert config.hc_mult == 8 and config.text_config.hc_mult == 8
    assert "hc_mult=8 (the text config's)" in filled and "hc_mult=4 (a count)" not in filled
    config = Config(hc_mult=8, text_config=Config())
    synthesize.fill_missing(config, fills())
    assert not hasattr(config.text_config, "hc_mult")  # the top's own field: the text config gets no other value


class DropsUnknownSubConfigs(Config):
    """A class that loads every field of its config.json as given: a sub-config it does not declare
    comes back a plain dict."""

    @classmethod
    def from_dict(cls, values):
        return cls(**values)

    def to_dict(self):
        return {key: value.to_dict() if hasattr(value, "to_dict") else value for key, value in self.__dict__.items()}


def test_a_fill_the_class_does_not_keep_on_loading_its_config_json_is_marked_lost():
    config, filled = synthesize.filled_config(DropsUnknownSubConfigs, {"hc_mult": None}, fills())
    assert config.projector_config.n_embed == infer.COUNT
    assert (
        "projector_config={} (read by attribute: a sub-config; lost when DropsUnknownSubConfigs loads its config.json)"
        in filled
    )
    assert "hc_mult=4 (a count)" in filled  # kept: a plain value comes back as it was


def test_a_field_read_without_a_default_somewhere_is_filled_whatever_other_reads_give_it():
    found = infer.fills_of(
        infer.config_reads(
            [
                "def f(config):\n    return getattr(config, 'vocab_size', None) or 0\n",
                "def g(config):\n    return range(config.vocab_size)\n",
            ]
        )
    )
    assert found["vocab_size"]["absent"]  # the bare read fails where the field is absent
    assert found["vocab_size"]["value"] == qwen2_checkpoint.VOCAB_SIZE


def test_a_sub_config_the_class_leaves_none_is_made_of_the_class_it_declares_for_it():
    """``Gemma4Config`` defaults ``vision_config`` to None and, a strict dataclass, takes only a
    ``Gemma4VisionConfig`` there: the filled sub-config is of the declared class, its defaults shrunk,
    the fills' values over them (a generic config object was refused and upstream read None)."""
    from pytest_flmigrate.tiny import synthesize

    class Base:
        def __init__(self, **values):
            self.__dict__.update(values)

        def to_dict(self):
            return {key: value.to_dict() if hasattr(value, "to_dict") else value for key, value in vars(self).items()}

        @classmethod
        def from_dict(cls, data):
            return cls(**data)

    class VisionConfig(Base):
        def __init__(self, hidden_size=1152, num_hidden_layers=27, **values):
            super().__init__(hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, **values)

    class Config(Base):
        sub_configs = {"vision_config": VisionConfig}

        def __setattr__(self, name, value):
            if name == "vision_config" and not isinstance(value, (VisionConfig, type(None))):
                raise RuntimeError(f"Field 'vision_config' expected VisionConfig, got {type(value).__name__}")
            super().__setattr__(name, value)

    fills = {
        "vision_config": {"value": {}, "why": "a sub-config", "absent": True, "none": True, "config": True},
        "vision_config.default_output_length": {
            "value": 4,
            "why": "a count",
            "absent": True,
            "none": True,
            "config": False,
        },
    }
    config = Config(vision_config=None)
    assert synthesize.fill_missing(config, fills) == [
        "vision_config={} (a sub-config)",
        "vision_config.default_output_length=4 (a count)",
    ]
    vision = config.vision_config
    assert isinstance(vision, VisionConfig) and (vision.hidden_size, vision.num_hidden_layers) == (128, 2)
    assert vision.default_output_length == 4


def test_an_inferred_config_over_a_base_gets_the_fills_of_what_the_bases_class_leaves_none(tmp_path, monkeypatch):
    """The forced aligner's config is inferred over Qwen3-ASR's, whose thinker config leaves
    ``classify_num`` None: the inferred source asks for the class's fills too (its own win)."""
    from types import SimpleNamespace

    from pytest_flmigrate.tiny import sources

    def fill(value):
        return {"value": value, "why": "a count", "absent": True, "none": True, "config": False}

    base = SimpleNamespace(text="Qwen3ASRConfig")
    for name, value in {
        "base_config": lambda run: base,
        "imported_model_files": lambda run: [],
        "signatures": lambda run, paths: {},
        "config_reads": lambda texts, signature=None: infer.Reads(),
        "inferred_config": lambda *args: SimpleNamespace(
            files={}, missing=[], by_use=[], fills={"text_config.hidden_size": fill(128)}
        ),
        "class_fills": lambda run: {"thinker_config.classify_num": fill(4), "text_config.hidden_size": fill(64)},
    }.items():
        monkeypatch.setattr(infer, name, value)
    monkeypatch.setattr(sources, "write_folder", lambda name, files: tmp_path)
    monkeypatch.setattr(sources, "tiny_arch", lambda run: "Qwen3ASRForcedAlignerForTokenClassification")
    unit = SimpleNamespace(name="qwen3_asr_forced_aligner", files=[], module="m")
    run = SimpleNamespace(unit=lambda: unit, workspace=SimpleNamespace(upstream=lambda: SimpleNamespace(root=tmp_path)))
    fills = sources.inferred_source(run).fills
    assert fills == {"thinker_config.classify_num": fill(4), "text_config.hidden_size": fill(128)}
    monkeypatch.setattr(infer, "base_config", lambda run: None)  # no base: the inferred config values all it reads
    assert sources.inferred_source(run).fills == {"text_config.hidden_size": fill(128)}


ASSERTING = """
class Model:
    def __init__(self, config):
        assert config.tie_word_embeddings
        assert config.max_position_embeddings is not None and config.use_qk_norm
        self.window = config.sliding_window if config.sliding_window is not None else 0
        if config.use_bias:
            self.bias = None
"""


def test_a_field_upstreams_code_asserts_replaces_a_none_or_false_value():
    """``assert config.tie_word_embeddings`` (Cohere Compass) and ``assert
    config.max_position_embeddings is not None`` (Step 3.5): the class's False or None fails the
    control's start, so the fill replaces them; a field only tested or compared with None keeps them."""
    found = infer.fills_of(infer.config_reads([ASSERTING]))
    config = Config(
        tie_word_embeddings=False, max_position_embeddings=None, use_qk_norm=None, sliding_window=None, use_bias=False
    )
    filled = synthesize.fill_missing(config, found)
    assert config.tie_word_embeddings is True and config.use_qk_norm is True
    assert config.max_position_embeddings == shrink.MAX_POSITIONS
    assert config.sliding_window is None and config.use_bias is False  # not asserted: theirs stays
    assert "tie_word_embeddings=True (asserted by the code)" in filled


RAISING = """
class KDA:
    def __init__(self, config):
        if not getattr(config, "no_kda_lora", False):
            raise ValueError("KDA currently expects no_kda_lora=True")
        if not getattr(config, "safe_gate", False):
            self.gate = None
"""


def test_a_flag_whose_default_makes_the_code_raise_is_set():
    """Bailing MoE V3's ``if not getattr(config, "no_kda_lora", False): raise``: absent, the code's
    own default raises; a flag whose false value only picks another path keeps its default."""
    found = infer.fills_of(infer.config_reads([RAISING]))
    config = Config()
    filled = synthesize.fill_missing(config, found)
    assert config.no_kda_lora is True and not hasattr(config, "safe_gate")
    assert filled == ["no_kda_lora=True (asserted by the code)"]
    composite = Config(text_config=Config(no_kda_lora=False))  # the text config's class default fails it
    synthesize.fill_missing(composite, found)
    assert composite.no_kda_lora is True and composite.text_config.no_kda_lora is True
    inferred = infer.inferred_config("kda", "KDAForCausalLM", infer.config_reads([RAISING]), None, "m")
    assert json.loads(inferred.files["config.json"])["no_kda_lora"] is True  # an inferred config alike
