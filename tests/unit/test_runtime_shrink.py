"""The shrink rules of --tiny (tiny/shrink.py) on real config shapes (defaults of upstream
transformers classes, copied as to_dict() gives them)."""

from __future__ import annotations

import pytest

from pytest_flmigrate.tiny import shrink

VOCAB = 2048
SPECIALS = {"pad": 0, "bos": 0, "eos": 2}

# Qwen2-like dense defaults
DENSE = {
    "model_type": "qwen2",
    "vocab_size": 151936,
    "hidden_size": 4096,
    "intermediate_size": 22016,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "head_dim": None,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "pad_token_id": None,
    "tie_word_embeddings": False,
    "dtype": "bfloat16",
    "layer_types": ["full_attention"] * 28 + ["sliding_attention"] * 4,
    "rope_theta": 10000.0,
}
# DeepSeek-V3-like MoE with multi-head latent attention
MOE_MLA = {
    "model_type": "deepseek_v3",
    "vocab_size": 129280,
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "num_hidden_layers": 61,
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "n_shared_experts": 1,
    "n_routed_experts": 256,
    "num_experts_per_tok": 8,
    "n_group": 8,
    "topk_group": 4,
    "first_k_dense_replace": 3,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128,
    "v_head_dim": 128,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "pad_token_id": None,
}
# a vision-language composite: sub-configs, an image token beyond the tiny vocab, M-RoPE sections
VLM = {
    "model_type": "qwen2_5_vl",
    "image_token_id": 151655,
    "video_token_id": 151656,
    "text_config": {
        "model_type": "qwen2_5_vl_text",
        "vocab_size": 152064,
        "hidden_size": 3584,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "intermediate_size": 18944,
        "eos_token_id": [151645, 151643],
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    },
    "vision_config": {
        "model_type": "qwen2_5_vl",
        "depth": 32,
        "hidden_size": 1280,
        "num_heads": 16,
        "intermediate_size": 3420,
        "out_hidden_size": 3584,
        "patch_size": 14,
    },
}


def test_dense_sizes_follow_the_table():
    tiny = shrink.shrink_config(DENSE, VOCAB, SPECIALS)
    assert {
        key: tiny[key]
        for key in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
        )
    } == {
        "vocab_size": 2048,
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,  # as many as the heads, as in the original (no grouping)
    }
    assert tiny["head_dim"] is None  # None stays None: the model derives it (128 / 4 = 32)
    assert tiny["max_position_embeddings"] == 2048 and tiny["dtype"] == "float32"
    assert (tiny["bos_token_id"], tiny["eos_token_id"], tiny["pad_token_id"]) == (0, 2, None)
    # in-vocab ids of another vocabulary (Mistral's bos 1, eos 2) take the tiny tokenizer's too
    mistral = shrink.shrink_config({**DENSE, "bos_token_id": 1, "eos_token_id": 0, "pad_token_id": 11}, VOCAB, SPECIALS)
    assert (mistral["bos_token_id"], mistral["eos_token_id"], mistral["pad_token_id"]) == (0, 2, 0)
    assert tiny["rms_norm_eps"] == DENSE["rms_norm_eps"] and tiny["rope_theta"] == DENSE["rope_theta"]
    assert DENSE["hidden_size"] == 4096  # the input is not modified


def test_per_layer_lists_keep_one_layer_of_each_kind():
    tiny = shrink.shrink_config(DENSE, VOCAB, SPECIALS)
    assert tiny["layer_types"] == ["full_attention", "sliding_attention"]
    uniform = shrink.shrink_config({**DENSE, "layer_types": ["full_attention"] * 32}, VOCAB, SPECIALS)
    assert uniform["layer_types"] == ["full_attention", "full_attention"]
    pattern = shrink.shrink_config({"num_hidden_layers": 6, "hybrid_override_pattern": "MMM*MM"}, VOCAB, SPECIALS)
    assert pattern["hybrid_override_pattern"] == "M*"
    indices = shrink.shrink_config({"num_hidden_layers": 6, "mlp_only_layers": [0, 3, 5]}, VOCAB, SPECIALS)
    assert indices["mlp_only_layers"] == [0]
    # Laguna's shape: per-layer MLP kinds and head counts (its @strict validator checks both lengths)
    laguna = shrink.shrink_config(
        {
            "num_hidden_layers": 4,
            "mlp_layer_types": ["dense", "sparse", "sparse", "sparse"],
            "num_attention_heads_per_layer": [48, 64, 64, 64],
        },
        VOCAB,
        SPECIALS,
    )
    assert laguna["mlp_layer_types"] == ["dense", "sparse"]
    assert laguna["num_attention_heads_per_layer"] == [shrink.HEADS] * shrink.NUM_LAYERS
    other_length = shrink.shrink_config({"num_hidden_layers": 4, "scores_per_layer": [1, 2]}, VOCAB, SPECIALS)
    assert other_length["scores_per_layer"] == [1, 2]  # not one entry per layer: left alone


def test_moe_and_latent_attention_shrink_together():
    tiny = shrink.shrink_config(MOE_MLA, VOCAB, SPECIALS)
    assert {
        key: tiny[key]
        for key in (
            "n_routed_experts",
            "num_experts_per_tok",
            "n_shared_experts",
            "moe_intermediate_size",
            "n_group",
            "topk_group",
            "first_k_dense_replace",
        )
    } == {
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "n_shared_experts": 1,
        "moe_intermediate_size": 64,
        "n_group": 1,
        "topk_group": 1,
        "first_k_dense_replace": 1,
    }
    assert tiny["qk_nope_head_dim"] == shrink.HEAD_DIM == tiny["v_head_dim"]
    assert tiny["q_lora_rank"] < MOE_MLA["q_lora_rank"]
    assert shrink.shrink_config({**MOE_MLA, "n_shared_experts": 0}, VOCAB, SPECIALS)["n_shared_experts"] == 0
    assert shrink.shrink_config({**MOE_MLA, "q_lora_rank": None}, VOCAB, SPECIALS)["q_lora_rank"] is None


def test_sub_configs_token_ids_and_rope_sections():
    tiny = shrink.shrink_config(VLM, VOCAB, SPECIALS)
    text, vision = tiny["text_config"], tiny["vision_config"]
    assert (text["hidden_size"], text["num_hidden_layers"], text["vocab_size"]) == (128, 2, 2048)
    assert (vision["depth"], vision["hidden_size"], vision["num_heads"], vision["out_hidden_size"]) == (2, 128, 4, 128)
    assert vision["patch_size"] == 14
    assert text["eos_token_id"] == [2]
    # image/video ids move to free ids at the top of the vocab, distinct, above the specials
    assert {tiny["image_token_id"], tiny["video_token_id"]} == {2047, 2046}
    assert sum(text["rope_scaling"]["mrope_section"]) == shrink.HEAD_DIM // 2
    assert text["rope_scaling"]["type"] == "mrope"


def test_latent_attention_keeps_the_head_size_the_cpu_mla_backend_needs():
    # vLLM 0.32's CPU MLA backends accept only the latent head size 576: kv_lora_rank + qk_rope_head_dim
    small = {**MOE_MLA, "kv_lora_rank": 256, "qk_rope_head_dim": 32}
    for config in (MOE_MLA, small):
        tiny = shrink.shrink_config(config, VOCAB, SPECIALS)
        assert (tiny["kv_lora_rank"], tiny["qk_rope_head_dim"]) == (512, 64)
    assert all("576" in reason for _, reason in shrink.BACKEND_SIZES.values())
    # the rest of the model stays tiny; a model without latent attention gains no latent fields
    assert tiny["hidden_size"] == shrink.HIDDEN and tiny["num_attention_heads"] == shrink.HEADS
    assert "kv_lora_rank" not in shrink.shrink_config(DENSE, VOCAB, SPECIALS)


def bailing_layer_types(layers: int, group: int) -> list[str]:
    """BailingMoeV3VLConfig's schedule (vLLM 0.32 transformers_utils/configs/bailing_moe_v3_vl.py),
    which its __init__ requires layer_types to equal."""
    grouped = layers // group * group
    return [
        "linear_attention" if (index + 1) % group != 0 and index < grouped else "full_attention"
        for index in range(layers)
    ]


def test_a_schedule_period_becomes_the_tiny_stack_so_derived_layer_types_agree():
    bailing = {"num_hidden_layers": 20, "layer_group_size": 5, "layer_types": bailing_layer_types(20, 5)}
    tiny = shrink.shrink_config(bailing, VOCAB, SPECIALS)
    assert tiny["layer_group_size"] == shrink.NUM_LAYERS
    assert tiny["layer_types"] == bailing_layer_types(tiny["num_hidden_layers"], tiny["layer_group_size"])
    assert tiny["layer_types"] == ["linear_attention", "full_attention"]
    # Jamba's attention every 8th layer from the 4th: one mamba layer, then the attention layer
    jamba = shrink.shrink_config(
        {"num_hidden_layers": 32, "attn_layer_period": 8, "attn_layer_offset": 4, "expert_layer_period": 2},
        VOCAB,
        SPECIALS,
    )
    assert (jamba["attn_layer_period"], jamba["attn_layer_offset"], jamba["expert_layer_period"]) == (2, 1, 2)
    assert [index % jamba["attn_layer_period"] == jamba["attn_layer_offset"] for index in range(2)] == [False, True]
    every_layer = shrink.shrink_config({"num_hidden_layers": 24, "decoder_sparse_step": 1}, VOCAB, SPECIALS)
    assert every_layer["decoder_sparse_step"] == 1


def test_a_leading_count_vllm_reads_is_derived_from_its_per_layer_list():
    # transformers 5's Glm4MoeLiteConfig holds mlp_layer_types only; vLLM 0.32's glm4_moe_lite reads
    # first_k_dense_replace (real checkpoints carry it)
    glm = {"num_hidden_layers": 47, "mlp_layer_types": ["dense"] + ["sparse"] * 46}
    tiny = shrink.shrink_config(glm, VOCAB, SPECIALS)
    assert tiny["mlp_layer_types"] == ["dense", "sparse"] and tiny["first_k_dense_replace"] == 1
    all_sparse = shrink.shrink_config({"num_hidden_layers": 4, "mlp_layer_types": ["sparse"] * 4}, VOCAB, SPECIALS)
    assert all_sparse["first_k_dense_replace"] == 0
    # a config that has the field keeps its own value (shrunk as before)
    assert shrink.shrink_config({**glm, "first_k_dense_replace": 3}, VOCAB, SPECIALS)["first_k_dense_replace"] == 1
    assert "first_k_dense_replace" not in shrink.shrink_config(DENSE, VOCAB, SPECIALS)


def test_weight_init_scale_is_raised_so_tiny_outputs_depend_on_every_layer():
    configs = {**DENSE, "initializer_range": 0.02, "text_config": {"model_type": "x", "init_std": 0.006}}
    tiny = shrink.shrink_config(configs, VOCAB, SPECIALS)
    assert (tiny["initializer_range"], tiny["text_config"]["init_std"]) == (0.1, 0.1)
    # absent or not a number: left as it is
    assert "initializer_range" not in shrink.shrink_config(DENSE, VOCAB, SPECIALS)
    assert shrink.shrink_config({"initializer_range": None}, VOCAB, SPECIALS) == {"initializer_range": None}


def test_m_rope_sections_follow_the_rotary_size_beside_the_rope_dict_too():
    # Bailing V3 VL's shape: latent attention in the text model (rotary = qk_rope_head_dim), the
    # sections both in its rope dict and at the top level, which its config requires to agree
    bailing = {
        "model_type": "bailing_moe_v3_vl",
        "mrope_section": [12, 10, 10],
        "text_config": {
            "model_type": "bailing_hybrid",
            "num_hidden_layers": 20,
            "head_dim": 128,
            "qk_rope_head_dim": 64,
            "rope_parameters": {"rope_type": "default", "mrope_section": [12, 10, 10]},
        },
    }
    tiny = shrink.shrink_config(bailing, VOCAB, SPECIALS)
    half_rotary = shrink.BACKEND_SIZES["qk_rope_head_dim"][0] // 2
    assert tiny["text_config"]["rope_parameters"]["mrope_section"] == tiny["mrope_section"]
    assert sum(tiny["mrope_section"]) == half_rotary
    assert shrink.shrink_config({"mrope_section": [16, 24, 24]}, VOCAB, SPECIALS)["mrope_section"] == [4, 6, 6]


@pytest.mark.parametrize(
    ("sections", "total", "expected"),
    [
        ([16, 24, 24], 16, [4, 6, 6]),
        ([1, 1, 1], 16, [6, 5, 5]),
        ([64], 16, [16]),
        ([24, 20, 20], 16, [6, 5, 5]),
    ],
)
def test_rescale_keeps_proportions_and_the_sum(sections, total, expected):
    assert shrink.rescale(sections, total) == expected


def test_changed_fields_name_nested_fields_in_order():
    tiny = shrink.shrink_config(VLM, VOCAB, SPECIALS)
    fields = dict(shrink.changed_fields(VLM, tiny))
    assert fields["text_config.hidden_size"] == 128 and fields["vision_config.depth"] == 2
    assert "vision_config.patch_size" not in fields and "model_type" not in fields
    names = [name for name, _ in shrink.changed_fields(VLM, tiny)]
    assert names == sorted(names)


def test_per_layer_size_overrides_move_to_the_tiny_layer_of_their_kind():
    # Gemma 4: every sixth layer is a full-attention layer with a larger head, keyed "05", "11", ...
    kinds = (["sliding_attention"] * 5 + ["full_attention"]) * 5
    text = {
        "model_type": "gemma4_text",
        "num_hidden_layers": 30,
        "layer_types": kinds,
        "head_dim": 256,
        "per_layer_config": {f"{i:02d}": {"head_dim": 512} for i in range(5, 30, 6)},
    }
    tiny = shrink.shrink_config({"text_config": text}, 2048, SPECIALS)["text_config"]
    assert tiny["layer_types"] == ["sliding_attention", "full_attention"]
    assert tiny["per_layer_config"] == {"01": {"head_dim": shrink.HEAD_DIM}}
    plain = shrink.shrink_config(
        {"num_hidden_layers": 8, "per_layer_config": {1: {"a": 1}, 6: {"a": 2}}}, 2048, SPECIALS
    )
    assert plain["per_layer_config"] == {1: {"a": 1}}  # no kinds: indices inside the tiny stack stay


def test_key_value_heads_equal_to_the_heads_stay_equal():
    equal = shrink.shrink_config({"num_attention_heads": 16, "num_key_value_heads": 16}, 2048, SPECIALS)
    grouped = shrink.shrink_config({"num_attention_heads": 16, "num_key_value_heads": 4}, 2048, SPECIALS)
    assert equal["num_key_value_heads"] == shrink.HEADS and grouped["num_key_value_heads"] == shrink.KV_HEADS
    # Step 3's key/value heads are ``num_attention_groups``: left at 8 over 4 heads, vLLM refused them
    step = shrink.shrink_config({"num_attention_heads": 64, "num_attention_groups": 8}, 2048, SPECIALS)
    assert (step["num_attention_heads"], step["num_attention_groups"]) == (shrink.HEADS, shrink.KV_HEADS)


def test_a_size_of_zero_stays_zero():
    # Glm5Next's sparse-attention layers have no rotary part: qk_rope_head_dim 0, which it checks
    tiny = shrink.shrink_config({"qk_rope_head_dim": 0, "qk_nope_head_dim": 192}, 2048, SPECIALS)
    assert (tiny["qk_rope_head_dim"], tiny["qk_nope_head_dim"]) == (0, shrink.HEAD_DIM)


def test_a_table_over_part_of_the_vocabulary_shrinks_with_it():
    """Gemma 4's per-layer input embeddings (``vocab_size_per_layer_input`` 262144 rows per layer)
    made its tiny model 138 M parameters; a smaller table stays as it is."""
    tiny = shrink.shrink_config({"vocab_size": 262144, "vocab_size_per_layer_input": 262144}, VOCAB, SPECIALS)
    assert tiny["vocab_size_per_layer_input"] == VOCAB
    assert shrink.shrink_config({"vocab_size_per_layer_input": 64}, VOCAB, SPECIALS)["vocab_size_per_layer_input"] == 64
