"""The per-layer norms a synthesized checkpoint is completed with (tiny/layer_norms.py), on the
names transformers' AXK1ForCausalLM saves for a tiny model (upstream transformers 5.19)."""

from __future__ import annotations

from pytest_flmigrate.tiny import layer_norms

# layer 0 dense (no post_mlp_layernorm: transformers keeps it in the MoE block), layer 1 MoE
AXK1 = [
    "lm_head.weight",
    "model.embed_tokens.weight",
    "model.norm.weight",
    "model.layers.0.input_layernorm.weight",
    "model.layers.0.post_attention_layernorm.weight",
    "model.layers.0.mlp.gate_proj.weight",
    "model.layers.0.self_attn.kv_a_layernorm.weight",
    "model.layers.1.input_layernorm.weight",
    "model.layers.1.post_attention_layernorm.weight",
    "model.layers.1.post_mlp_layernorm.weight",
    "model.layers.1.mlp.experts.0.gate_proj.weight",
    "model.layers.1.self_attn.kv_a_layernorm.weight",
]


def test_a_norm_some_layers_lack_is_copied_from_the_first_layer_having_it():
    assert layer_norms.completions(AXK1) == {
        "model.layers.0.post_mlp_layernorm.weight": "model.layers.1.post_mlp_layernorm.weight"
    }


def test_uniform_layers_and_other_stacks_need_nothing():
    uniform = [name for name in AXK1 if "post_mlp_layernorm" not in name]
    assert layer_norms.completions(uniform) == {}
    # a norm inside a sub-module (the attention's, an expert's) is the module's business, not the layer's
    assert layer_norms.completions([*uniform, "model.layers.1.self_attn.q_a_layernorm.weight"]) == {}
    # each stack is its own: a vision tower's layers are not the decoder's
    vision = ["visual.blocks.layers.0.norm1.weight", "visual.blocks.layers.1.norm1.weight"]
    assert layer_norms.completions([*uniform, *vision]) == {}
