"""A field an inferred tiny config cannot value by its name or a default is valued by how the
model's code uses it (tiny/usage.py, tiny/infer.py), and a field used ambiguously still fails with
its name. Each model source here is a small synthetic one."""

from __future__ import annotations

import json

from pytest_flmigrate.tiny import infer, shrink, usage


def infer_from(code: str, base: infer.Base | None = None, signature=None) -> infer.Inferred:
    reads = infer.config_reads([code], signature)
    return infer.inferred_config("m", "MForCausalLM", reads, base, "vllm.model_executor.models.m")


def config_of(inferred: infer.Inferred) -> dict:
    return json.loads(inferred.files["config.json"])


def test_a_field_used_as_a_truth_value_is_a_flag_off():
    inferred = infer_from(
        "class Attention:\n"
        "    def __init__(self, config):\n"
        "        if config.qk_layernorm:\n"
        "            self.norm = None\n"
        "        self.gated = not config.output_gate and True\n"
    )
    assert inferred.missing == []
    config = config_of(inferred)
    assert config["qk_layernorm"] is False and config["output_gate"] is False
    assert "qk_layernorm=False (a truth value: off)" in inferred.by_use


def test_a_flag_passed_to_a_parameter_takes_its_default_there_and_through_an_imported_signature():
    code = (
        "from vllm.model_executor.layers.fused_moe import FusedMoE\n\n"
        "class Block:\n"
        "    def __init__(self, config):\n"
        "        self.experts = FusedMoE(renormalize=config.norm_topk_prob)\n"
    )
    assert infer_from(code).missing == ["norm_topk_prob"]  # nothing says what FusedMoE takes

    def signature(name):
        return [("renormalize", "bool", "True", True)] if name == "FusedMoE" else None

    inferred = infer_from(code, signature=signature)
    assert inferred.missing == [] and config_of(inferred)["norm_topk_prob"] is True


COUNTS = """
class Model:
    def __init__(self, config):
        self.blocks = [Block(i) for i in range(config.num_blocks)]
        self.markov = nn.Embedding(config.vocab_size, config.markov_rank)
        self.window = config.window_tokens // 2
        self.stages = Head(config.stage_count)
        self.routed = config.mtp_n_routed_experts


class Head:
    def __init__(self, stages: int):
        self.stages = stages
"""


def test_a_field_used_as_a_count_is_a_small_int_by_its_role():
    inferred = infer_from(COUNTS)
    config = config_of(inferred)
    assert inferred.missing == ["mtp_n_routed_experts"]  # stored, never used: no evidence
    assert (config["num_blocks"], config["markov_rank"], config["window_tokens"], config["stage_count"]) == (
        infer.COUNT,
        infer.COUNT,
        infer.COUNT,
        infer.COUNT,
    )
    used = COUNTS.replace(
        "self.routed = config.mtp_n_routed_experts", "self.routed = range(config.mtp_n_routed_experts)"
    )
    config = config_of(infer_from(used))
    assert config["mtp_n_routed_experts"] == shrink.EXPERTS  # a count named by its role


def test_a_string_compared_with_literals_takes_the_first_or_the_parameters_default():
    inferred = infer_from(
        "class Attention:\n"
        "    def __init__(self, config):\n"
        "        self.gate = Gate(config.gate_func, config.score_func)\n\n"
        "class Gate:\n"
        "    def __init__(self, gate_func: str | None = None, score_func: str = 'sigmoid'):\n"
        "        self.gate_func = gate_func\n"
        "        if self.gate_func == 'silu':\n"
        "            pass\n"
        "        elif self.gate_func in ('softplus', 'tanh'):\n"
        "            pass\n"
        "        if score_func == 'softmax' or score_func == 'sigmoid':\n"
        "            pass\n"
    )
    config = config_of(inferred)
    assert inferred.missing == []
    assert config["gate_func"] == "silu" and config["score_func"] == "sigmoid"
    assert "gate_func='silu' (compared with 'silu', 'softplus', 'tanh': the first)" in inferred.by_use


def test_a_field_iterated_or_indexed_is_one_value_per_layer():
    inferred = infer_from(
        "class Model:\n"
        "    def __init__(self, config):\n"
        "        for kind in config.block_pattern:\n"
        "            if kind == 'M':\n"
        "                pass\n"
        "        self.first = config.target_layer_ids[0]\n"
    )
    config = config_of(inferred)
    assert inferred.missing == []
    assert config["block_pattern"] == ["M"] * shrink.NUM_LAYERS
    assert config["target_layer_ids"] == list(range(shrink.NUM_LAYERS))  # layer indices, by their name


def test_a_field_read_by_key_is_a_dict_of_its_keys_valued_alike():
    inferred = infer_from(
        "class Draft:\n"
        "    def __init__(self, config):\n"
        "        draft_config = config.dflash_config\n"
        "        self.ids = [i + 1 for i in draft_config['target_layer_ids']]\n"
        "        self.mask = draft_config.get('mask_token_id')\n"
        "        self.taps = draft_config.get('use_conv', True)\n"
        "        self.rank = range(draft_config['selector_rank'])\n"
    )
    config = config_of(inferred)
    assert inferred.missing == []
    dflash = config["dflash_config"]
    assert dflash["target_layer_ids"] == list(range(shrink.NUM_LAYERS)) and dflash["selector_rank"] == infer.COUNT
    assert dflash["use_conv"] is True  # the code's own default stands
    assert dflash["mask_token_id"] is not None  # a token id: a free id of the tiny vocab


def test_a_dict_splatted_into_a_callee_holds_its_parameters():
    inferred = infer_from(
        "class Pooler:\n"
        "    def __init__(self, config):\n"
        "        head_config = config.joint_head_config\n"
        "        self.head = JointHead(**head_config)\n\n"
        "class JointHead:\n"
        "    def __init__(self, hidden_size: int, heads: int, rounds, bias: bool = True):\n"
        "        self.layers = [Layer() for _ in range(rounds)]\n"
    )
    assert inferred.missing == []
    head = config_of(inferred)["joint_head_config"]
    assert head == {"heads": shrink.HEADS, "hidden_size": shrink.HIDDEN, "rounds": infer.COUNT, "bias": True}


SUB_CONFIG = """
class MTP:
    def __init__(self, vllm_config):
        config = vllm_config.model_config.hf_config.text_config
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.vision = Tower(vllm_config.model_config.hf_config.vision_config)


class Tower:
    def __init__(self, vision_config):
        self.patch = Conv(vision_config.merge_size, vision_config.merge_size // 2)
"""


def test_a_sub_config_read_through_a_name_or_a_parameter_is_a_nested_config():
    base = infer.Base("transformers.models.glm4.configuration_glm4", "Glm4Config", frozenset({"vocab_size"}), "Glm4")
    inferred = infer_from(SUB_CONFIG, base)
    config = config_of(inferred)
    assert inferred.missing == []
    assert "hidden_size" not in config  # read through the text config only
    assert config["text_config"] == {"hidden_size": shrink.HIDDEN, "rms_norm_eps": 1e-6}
    assert config["vision_config"] == {"merge_size": infer.COUNT}
    code = inferred.files[infer.CODE_FILE]
    assert "    'text_config': Base,\n    'vision_config': PretrainedConfig,\n" in code  # the text model's own class
    namespace: dict = {"Base": object, "PretrainedConfig": object}
    for line in (
        "from transformers.models.glm4.configuration_glm4 import Glm4Config as Base\n",
        "from transformers import PretrainedConfig\n",
    ):
        code = code.replace(line, "")
    exec(code, namespace)
    assert namespace["KEPT"] == ()  # a base without a text config moves no field away
    assert set(namespace["SUB_CONFIGS"]) == {"text_config", "vision_config"}


class PretrainedConfig:
    """A stand-in for transformers' base config: sets what it is given."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def generated_class(inferred: infer.Inferred, base: type) -> type:
    """The inferred config's class, its module run over ``base`` and ``PretrainedConfig`` (stand-ins
    for the imports it names)."""
    module = "".join(
        line for line in inferred.files[infer.CODE_FILE].splitlines(keepends=True) if not line.startswith("from ")
    )
    namespace = {"Base": base, "PretrainedConfig": PretrainedConfig}
    exec(module, namespace)
    return namespace[infer.CLASS_NAME]


def test_the_inferred_config_keeps_sub_configs_as_objects_and_fields_the_base_moves():
    """The generated module, run against stand-ins: a composite base that moves ``hidden_size`` into
    its text config (as transformers 5's Qwen2_5_VLConfig does) and a PretrainedConfig that sets
    what it is given."""
    base = infer.Base("m.configuration", "VLConfig", frozenset({"text_config"}), "VLConfig")
    code = "class M:\n    def __init__(self, config):\n        self.h = config.hidden_size\n        self.p = config.vision_config.patch_size * 2\n"
    inferred = infer_from(code, base)

    class Base(PretrainedConfig):
        def __init__(self, **kwargs):
            self.text_config = PretrainedConfig(hidden_size=kwargs.pop("hidden_size", None))
            super().__init__(**kwargs)

    config = generated_class(inferred, Base)(**config_of(inferred))
    assert config.hidden_size == shrink.HIDDEN
    assert isinstance(config.vision_config, PretrainedConfig) and config.vision_config.patch_size == infer.COUNT
    # vLLM builds such a model's layers with its text config: the field is filled there where absent
    assert inferred.fills == {
        "text_config.hidden_size": infer.fill(shrink.HIDDEN, "read at the top, kept in the text config")
    }
    plain = infer_from("def f(config):\n    return config.hidden_size\n").files[infer.CODE_FILE]
    assert "def __init__" not in plain  # nothing to convert or keep: no constructor of its own
    assert infer_from("def f(config):\n    return config.hidden_size\n").fills == {}


def test_a_field_read_at_the_top_takes_the_text_configs_value_over_its_roles():
    """A hybrid text config (Qwen 3.5's ``layer_types`` with linear attention) read at the top by
    the text model's code: the role's all-``full_attention`` guess would make vLLM take the model
    for a pure attention one."""
    base = infer.Base("m.configuration", "HybridConfig", frozenset({"text_config"}), "HybridConfig")
    inferred = infer_from("def f(config):\n    return config.layer_types[0]\n", base)
    assert config_of(inferred)["layer_types"] == ["full_attention"] * shrink.NUM_LAYERS  # the role's guess

    class Base(PretrainedConfig):
        def __init__(self, **kwargs):
            self.text_config = PretrainedConfig(layer_types=["linear_attention", "full_attention"])
            kwargs.pop("layer_types", None)
            super().__init__(**kwargs)

    assert generated_class(inferred, Base)(**config_of(inferred)).layer_types == ["linear_attention", "full_attention"]


def test_a_field_with_uses_that_disagree_or_no_use_fails_with_its_name():
    inferred = infer_from(
        "class Vision:\n"
        "    def __init__(self, config):\n"
        "        self.grid = config.image_size // 16\n"
        "        self.height = config.image_size[0]\n"
        "        self.mode = config.attn_mode\n"
        "        self.kind = str(config.attn_mode)\n"
        "        self.processor_kwargs = dict(min_patches=config.min_dynamic_patch)\n"
    )
    assert inferred.missing == [
        "attn_mode (a string no literal names)",
        "image_size (its uses disagree: int, list)",
        "min_dynamic_patch",
    ]


def test_a_truth_test_of_a_count_or_a_fallback_value_is_no_flag():
    uses = usage.collect(
        [
            "def f(config):\n"
            "    if config.num_groups:\n"
            "        return range(config.num_groups)\n"
            "    width = config.proj_width or config.hidden_size\n"
            "    ids = list(config.layer_indexes or [])\n"
        ]
    )
    assert uses[("num_groups",)].kind == usage.INT  # tested for non-zero, used as a count
    proj_width = uses[("proj_width",)]
    assert proj_width.kind is None and proj_width.optional  # ``x or fallback``: no kind, None means the fallback
    assert uses[("layer_indexes",)].kind == usage.LIST  # its fallback is a list


def test_a_field_the_unit_reads_through_an_imported_model_fills_what_the_base_lacks():
    base = infer.Base("m.configuration", "HYConfig", frozenset({"hidden_size"}), "HYConfig")
    reads = infer.config_reads(["def f(config):\n    return config.hidden_size\n"])
    borrowed = infer.config_reads(
        ["def g(config):\n    return config.expert_hidden_dim, config.router_mode, config.text_config.x\n"]
    )
    inferred = infer.inferred_config("m", "MForCausalLM", reads, base, "m", borrowed)
    assert inferred.missing == []  # the imported model's router_mode has no value: left out, not failed
    config = config_of(inferred)
    assert config["expert_hidden_dim"] == shrink.MOE_INTERMEDIATE and "router_mode" not in config
    assert "text_config" not in config
