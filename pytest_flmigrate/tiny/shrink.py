"""The rules that shrink a model config to a tiny one, kept as data (stdlib only).

``shrink_config`` takes the ``to_dict()`` of a config class's defaults and returns the tiny
variant: every size field named in ``SIZES`` takes its tiny value (``min`` with the original for
the fields in ``AT_MOST``), except the sizes a backend needs (``BACKEND_SIZES``, each with its
reason); per-layer lists follow the new layer count and a schedule's period becomes the tiny
stack, token ids stay inside the tiny vocab, rope sections follow the new rotary size, and nested
sub-configs (text / vision / audio, anything holding a ``model_type``) are shrunk alike. It runs in the upstream env too
(tiny/synthesize.py imports it as a sibling script), so it imports nothing but the stdlib.
"""

from __future__ import annotations

from typing import Any

NUM_LAYERS = 2
HIDDEN = 128
HEADS = 4
KV_HEADS = 2
HEAD_DIM = 32
INTERMEDIATE = 256
MOE_INTERMEDIATE = 64
EXPERTS = 4
EXPERTS_PER_TOKEN = 2
LORA_RANK = 32
MAX_POSITIONS = 2048

CPU_MLA = (
    "upstream vLLM 0.32's CPU MLA backends (v1/attention/backends/mla/cpu_mla.py, amx_mla.py) support "
    "only the latent head size 576 = kv_lora_rank 512 + qk_rope_head_dim 64 (DeepSeek's); GPU backends "
    "take smaller ranks, so there these sizes only make the tiny model larger"
)
#: sizes kept at what a backend needs instead of tiny: field -> (value, why).
BACKEND_SIZES: dict[str, tuple[int, str]] = {
    "kv_lora_rank": (512, CPU_MLA),
    "qk_rope_head_dim": (64, CPU_MLA),
}

#: field -> tiny value, applied wherever the field holds a number (None and absent stay so).
SIZES: dict[str, int] = {
    # depth
    "num_hidden_layers": NUM_LAYERS,
    "num_layers": NUM_LAYERS,
    "n_layers": NUM_LAYERS,
    "n_layer": NUM_LAYERS,
    "depth": NUM_LAYERS,
    "encoder_layers": NUM_LAYERS,
    "decoder_layers": NUM_LAYERS,
    # width
    "hidden_size": HIDDEN,
    "d_model": HIDDEN,
    "n_embd": HIDDEN,
    "embed_dim": HIDDEN,
    "out_hidden_size": HIDDEN,
    "projection_dim": HIDDEN,
    # attention
    "num_attention_heads": HEADS,
    "n_head": HEADS,
    "n_heads": HEADS,
    "num_heads": HEADS,
    "encoder_attention_heads": HEADS,
    "decoder_attention_heads": HEADS,
    "num_key_value_heads": KV_HEADS,
    "n_kv_heads": KV_HEADS,
    "num_kv_heads": KV_HEADS,
    "num_attention_groups": KV_HEADS,  # Step 3's key/value heads
    "head_dim": HEAD_DIM,
    "attention_head_dim": HEAD_DIM,
    # feed-forward
    "intermediate_size": INTERMEDIATE,
    "ffn_dim": INTERMEDIATE,
    "n_inner": INTERMEDIATE,
    "encoder_ffn_dim": INTERMEDIATE,
    "decoder_ffn_dim": INTERMEDIATE,
    # mixture of experts
    "moe_intermediate_size": MOE_INTERMEDIATE,
    "expert_intermediate_size": MOE_INTERMEDIATE,
    "shared_expert_intermediate_size": MOE_INTERMEDIATE,
    "moe_shared_expert_intermediate_size": MOE_INTERMEDIATE,
    "num_experts": EXPERTS,
    "n_routed_experts": EXPERTS,
    "num_local_experts": EXPERTS,
    "moe_num_experts": EXPERTS,
    "num_experts_per_tok": EXPERTS_PER_TOKEN,
    "num_experts_per_token": EXPERTS_PER_TOKEN,
    "moe_topk": EXPERTS_PER_TOKEN,
    "moe_k": EXPERTS_PER_TOKEN,
    "n_group": 1,
    "topk_group": 1,
    # multi-head latent attention: the query rank and the per-head dims (the latent ones: BACKEND_SIZES)
    "q_lora_rank": LORA_RANK * 2,
    "qk_nope_head_dim": HEAD_DIM,
    "v_head_dim": HEAD_DIM,
    **{field: value for field, (value, _) in BACKEND_SIZES.items()},
}

#: fields that only ever shrink (``min(original, value)``): counts that may be 0 on purpose.
AT_MOST: dict[str, int] = {
    "n_shared_experts": 1,
    "num_shared_experts": 1,
    "shared_expert_count": 1,
    "first_k_dense_replace": 1,
    "num_nextn_predict_layers": 1,
    "max_position_embeddings": MAX_POSITIONS,
}

#: per-layer lists (one entry per decoder layer) cut to the tiny layer count; so is any list
#: of that length whose key ends with one of ``PER_LAYER_SUFFIXES``.
PER_LAYER_LISTS = ("layer_types", "block_types", "hybrid_override_pattern")
PER_LAYER_SUFFIXES = ("_layer_types", "_per_layer")
#: per-layer lists of sizes: every tiny layer takes the tiny size.
PER_LAYER_SIZES = {
    "num_attention_heads_per_layer": HEADS,
    "num_key_value_heads_per_layer": KV_HEADS,
    "intermediate_size_per_layer": INTERMEDIATE,
    "head_dim_per_layer": HEAD_DIM,
}
#: periods of a per-layer schedule (a layer's kind follows ``(index + 1) % period`` or
#: ``index % period == offset``; classes like BailingMoeV3VLConfig derive ``layer_types`` from it
#: and reject any other list): at most the tiny layer count, so the tiny stack is one period
#: holding a layer of each kind, as the shrunk per-layer lists do; offsets stay inside it.
SCHEDULE_PERIODS = (
    "layer_group_size",
    "full_attention_interval",
    "sliding_window_pattern",
    "attn_layer_period",
    "expert_layer_period",
    "no_rope_layer_interval",
    "moe_layer_interval",
    "moe_layer_freq",
    "decoder_sparse_step",
    "encoder_sparse_step",
)
SCHEDULE_OFFSETS = ("attn_layer_offset", "expert_layer_offset", "moe_layer_offset")
#: scalar fields upstream vLLM's models read that transformers 5 classes replaced by a per-layer
#: list (``Glm4MoeLiteConfig`` has only ``mlp_layer_types``; checkpoints carry both), added when
#: absent: field -> (list field, the kind counted from the first layer).
LEADING_COUNTS = {"first_k_dense_replace": ("mlp_layer_types", "dense")}
#: dicts keyed by layer index (``"05"`` or ``5``: Gemma 4's ``per_layer_config`` of per-layer size
#: overrides): each entry moves to the tiny layer of its layer's kind (the kinds of the per-layer
#: list, as ``per_layer`` keeps them; without a list, indices inside the tiny stack stay), its
#: values shrunk alike; entries whose tiny layer is taken already are dropped.
LAYER_DICTS = ("per_layer_config",)
#: key/value head counts and the head count they go with: equal in the original (no grouped
#: heads, which some classes then require), equal in the tiny config.
KV_HEAD_FIELDS = {
    "num_key_value_heads": "num_attention_heads",
    "n_kv_heads": "n_heads",
    "num_kv_heads": "num_heads",
    "num_attention_groups": "num_attention_heads",
}
#: lists of layer indices kept when inside the tiny layer count.
LAYER_INDEX_LISTS = ("mlp_only_layers", "full_attention_idxs", "sliding_window_layers")
#: keys whose dict values are sub-configs even without a ``model_type`` of their own.
SUB_CONFIG_KEYS = (
    "text_config",
    "vision_config",
    "audio_config",
    "thinker_config",
    "talker_config",
    "encoder_config",
    "decoder_config",
    "speech_config",
    "projector_config",
)
#: the keys of a rope dict whose sections must add up to half the tiny rotary size; ``MROPE_KEY``
#: holds them, in that dict or beside it (BailingMoeV3VLConfig requires the two to agree).
ROPE_KEYS = ("rope_scaling", "rope_parameters")
MROPE_KEY = "mrope_section"
DTYPE_KEYS = ("torch_dtype", "dtype")
#: weight-init scales, wherever a config has one. At transformers' usual 0.02 a 128-wide random model
#: answers every prompt with one repeated token (cohere2_moe: newlines, the same with its MoE blocks
#: zeroed), so a token match would prove nothing about the layers; at 0.1 each prompt gives about 30
#: distinct tokens and zeroing the MoE changes all five (upstream transformers 5.19, seed 0).
INIT_SCALES = {"initializer_range": 0.1, "init_std": 0.1}
#: special token fields set to the tiny tokenizer's own specials.
SPECIAL_TOKEN_IDS = {"pad_token_id": "pad", "bos_token_id": "bos", "eos_token_id": "eos"}


def shrink_config(config: dict[str, Any], vocab_size: int, specials: dict[str, int]) -> dict[str, Any]:
    """The tiny variant of ``config`` (not modified): see the module docstring.

    ``specials`` maps ``pad``/``bos``/``eos`` to the tiny tokenizer's ids (set wherever the
    config has one); other ``*_token_id``
    / ``*_token_index`` fields beyond ``vocab_size`` take free ids from the top of the vocab.
    """
    top = iter(range(vocab_size - 1, max(specials.values()), -1))
    return _shrink(config, vocab_size, specials, top)


def _shrink(config: dict[str, Any], vocab_size: int, specials: dict[str, int], top) -> dict[str, Any]:
    layers = _layer_count(config)
    out: dict[str, Any] = {}
    for key in sorted(config):
        value = config[key]
        if isinstance(value, dict) and (key in SUB_CONFIG_KEYS or "model_type" in value):
            out[key] = _shrink(value, vocab_size, specials, top)
        elif key == "vocab_size" and _is_int(value):
            out[key] = vocab_size
        elif key.startswith("vocab_size_") and _is_int(value):  # a table over part of it (per-layer inputs)
            out[key] = min(value, vocab_size)
        elif key in KV_HEAD_FIELDS and _is_int(value) and value == config.get(KV_HEAD_FIELDS[key]):
            out[key] = SIZES[KV_HEAD_FIELDS[key]]
        elif key in LAYER_DICTS and isinstance(value, dict) and all(_index(k) is not None for k in value):
            out[key] = {
                new: _shrink(entry, vocab_size, specials, top) if isinstance(entry, dict) else entry
                for new, entry in layer_dict(value, tiny_layers(config, layers)).items()
            }
        elif key in SIZES and _is_int(value):
            out[key] = SIZES[key] if value else 0  # a size of 0 turns a feature off (DSA layers' NoPE)
        elif key in AT_MOST and _is_int(value):
            out[key] = min(value, AT_MOST[key])
        elif key in SCHEDULE_PERIODS and _is_int(value) and value > 0:
            out[key] = min(value, NUM_LAYERS)
        elif key in SCHEDULE_OFFSETS and _is_int(value):
            out[key] = min(value, NUM_LAYERS - 1)
        elif key in PER_LAYER_SIZES and isinstance(value, list) and layers and len(value) == layers:
            out[key] = [PER_LAYER_SIZES[key]] * NUM_LAYERS
        elif _per_layer_key(key) and isinstance(value, (list, str)) and layers and len(value) == layers:
            out[key] = per_layer(value)
        elif key in LAYER_INDEX_LISTS and isinstance(value, list):
            out[key] = [index for index in value if _is_int(index) and index < NUM_LAYERS]
        elif key in ROPE_KEYS and isinstance(value, dict):
            out[key] = rope(value, rotary_dim(config))
        elif key == MROPE_KEY and _sections(value):
            out[key] = rescale(value, rotary_dim(config) // 2)
        elif key in INIT_SCALES and isinstance(value, (int, float)):
            out[key] = INIT_SCALES[key]
        elif key in DTYPE_KEYS and value is not None:
            out[key] = "float32"
        elif key in SPECIAL_TOKEN_IDS:
            out[key] = _special(value, specials[SPECIAL_TOKEN_IDS[key]])
        elif key.endswith(("_token_id", "_token_index")) and _is_int(value) and value >= vocab_size:
            out[key] = next(top)
        else:
            out[key] = value
    for field, (source, kind) in LEADING_COUNTS.items():
        if field not in out and isinstance(out.get(source), list):
            out[field] = leading(out[source], kind)
    return out


def _index(key: Any) -> int | None:
    if _is_int(key):
        return key
    return int(key) if isinstance(key, str) and key.isdigit() else None


def tiny_layers(config: dict[str, Any], layers: int | None) -> dict[int, int]:
    """Original layer index -> its tiny layer: by kind when a per-layer list says each layer's
    kind (``per_layer`` keeps the first ``NUM_LAYERS`` kinds in order), else the same index
    inside the tiny stack."""
    for key, values in sorted(config.items()):
        if _per_layer_key(key) and isinstance(values, list) and layers and len(values) == layers:
            kinds = list(dict.fromkeys(values))[:NUM_LAYERS]
            return {index: kinds.index(kind) for index, kind in enumerate(values) if kind in kinds}
    return {index: index for index in range(NUM_LAYERS)}


def layer_dict(entries: dict, tiny: dict[int, int]) -> dict:
    """A dict keyed by layer index moved onto the tiny layers (its key spelling kept)."""
    out: dict = {}
    for key in sorted(entries, key=lambda k: _index(k) or 0):
        index = _index(key)
        target = tiny.get(index) if index is not None else None
        if target is None:
            continue
        new = f"{target:0{len(key)}d}" if isinstance(key, str) else target
        if new not in out:
            out[new] = entries[key]
    return out


def leading(values: list, kind: str) -> int:
    """How many of ``values`` are ``kind`` before the first other one."""
    count = 0
    while count < len(values) and values[count] == kind:
        count += 1
    return count


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _per_layer_key(key: str) -> bool:
    return key in PER_LAYER_LISTS or key.endswith(PER_LAYER_SUFFIXES)


def _layer_count(config: dict[str, Any]) -> int | None:
    for key in ("num_hidden_layers", "num_layers", "n_layers", "n_layer"):
        if _is_int(config.get(key)):
            return config[key]
    return None


def per_layer(values: list | str) -> list | str:
    """``NUM_LAYERS`` entries covering the distinct kinds of the original, in order of appearance
    (a pattern of five sliding layers then one full keeps one of each)."""
    kinds = list(dict.fromkeys(values))[:NUM_LAYERS]
    kinds += [kinds[-1]] * (NUM_LAYERS - len(kinds))
    return "".join(kinds) if isinstance(values, str) else kinds


def rotary_dim(config: dict[str, Any]) -> int:
    """The tiny rotary size of ``config``'s attention: latent attention's rope dims when it (or its
    text model) has them, else the tiny head."""
    for scope in (config, config.get("text_config")):
        if isinstance(scope, dict) and _is_int(scope.get("qk_rope_head_dim")):
            return SIZES["qk_rope_head_dim"]
    return HEAD_DIM


def rope(parameters: dict[str, Any], rotary: int) -> dict[str, Any]:
    """M-RoPE sections rescaled to add up to ``rotary // 2`` (the rotary half of a tiny head)."""
    out = dict(parameters)
    sections: Any = parameters.get(MROPE_KEY)
    if _sections(sections):
        out[MROPE_KEY] = rescale(sections, rotary // 2)
    return out


def _sections(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_int(s) and s > 0 for s in value)


def rescale(sections: list[int], total: int) -> list[int]:
    """Positive integers proportional to ``sections`` adding up to ``total`` (remainder to the first)."""
    whole = sum(sections)
    scaled = [max(1, s * total // whole) for s in sections]
    scaled[0] += total - sum(scaled)
    return scaled


def _special(value: Any, tiny_id: int) -> Any:
    """A pad/bos/eos id (or list of them) becomes the tiny tokenizer's own: the original ids name
    tokens of another vocabulary. None (no such token) stays None."""
    if isinstance(value, list):
        return [tiny_id] if value else value
    return None if value is None else tiny_id


def changed_fields(original: dict[str, Any], shrunk: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted field, tiny value)`` for every field the shrink changed, nested ones included,
    in a stable order: what synthesize.py applies one by one to name a field the config rejects."""
    found: list[tuple[str, Any]] = []
    for key in sorted(shrunk):
        before, after = original.get(key), shrunk[key]
        if isinstance(before, dict) and isinstance(after, dict):
            found += changed_fields(before, after, f"{prefix}{key}.")
        elif before != after:
            found.append((f"{prefix}{key}", after))
    return found
