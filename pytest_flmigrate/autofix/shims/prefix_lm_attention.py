# SPDX-License-Identifier: Apache-2.0
"""Upstream vLLM's ``PrefillPrefixLMAttention`` on a vLLM 0.13 pin.

Written into the plugin by pytest-flmigrate (catalog P35) for migrated Prefix-LM models that import
upstream's ``PrefillPrefixLMAttention`` (``vllm.model_executor.layers.attention``). Upstream's layer
is decoder attention (it keeps a KV cache) whose backend is wrapped as the encoder-only one, so
every metadata build runs non-causally; it tags its KV cache spec ``non_causal=True``, and
upstream's engine core, reading the specs before it builds the scheduler, turns chunked prefill
and prefix caching off (both assume causal attention and would corrupt the bidirectional prefill).

vLLM 0.13 has the pieces under other names and signatures, and no ``non_causal`` field. Here:

- the backend is the pin's ``get_attn_backend`` for decoder attention (with the block size the
  pin's own layers pass it), wrapped by the pin's ``create_encoder_only_attention_backend``, given
  to the pin's ``Attention`` as upstream gives it to its own;
- ``get_kv_cache_spec`` applies upstream's scheduling policy itself: it is called on the engine
  core's config before the scheduler is built (one worker, the pin's uniprocess executor, shares
  that config), so it turns both off there, as upstream's engine does. A worker of another
  executor holds a copy of the config: it raises unless both are off already.

The pin's own models keep the pin's classes: only the migrated files import this one.
"""

from __future__ import annotations

import torch
from vllm.attention.backends.abstract import AttentionType
from vllm.attention.layer import Attention
from vllm.attention.layers.encoder_only_attention import create_encoder_only_attention_backend
from vllm.attention.selector import get_attn_backend
from vllm.config import CacheConfig, VllmConfig
from vllm.logger import init_logger
from vllm.v1.kv_cache_interface import KVCacheSpec

logger = init_logger(__name__)

SHARED_CONFIG_BACKENDS = ("uni",)
"""Executors whose worker runs in the engine core's process, on its very config object."""


class PrefillPrefixLMAttention(Attention):
    """Decoder attention that runs non-causally (Prefix LM), as upstream's."""

    def __init__(
        self,
        num_heads: int,
        head_size: int,
        scale: float,
        cache_config: CacheConfig | None = None,
        attn_type: str | None = None,
        **kwargs,
    ):
        dtype = torch.get_default_dtype()
        if cache_config is not None:
            kv_cache_dtype = cache_config.cache_dtype
            block_size = cache_config.block_size
        else:
            kv_cache_dtype = "auto"
            block_size = 16
        underlying_attn_backend = get_attn_backend(
            head_size,
            dtype,
            kv_cache_dtype,
            block_size=block_size,
            attn_type=AttentionType.DECODER,
        )
        attn_backend = create_encoder_only_attention_backend(underlying_attn_backend)
        if attn_type is not None:
            assert attn_type == AttentionType.DECODER, "PrefillPrefixLMAttention only supports AttentionType.DECODER"
        super().__init__(
            num_heads=num_heads,
            head_size=head_size,
            scale=scale,
            cache_config=cache_config,
            attn_backend=attn_backend,
            attn_type=AttentionType.DECODER,
            **kwargs,
        )

    def get_kv_cache_spec(self, vllm_config: VllmConfig) -> KVCacheSpec:
        disable_causal_scheduling(vllm_config)
        return super().get_kv_cache_spec(vllm_config)


def disable_causal_scheduling(vllm_config: VllmConfig) -> None:
    """Upstream's engine-core policy for a non-causal KV cache: no chunked prefill, no prefix
    caching. Raises where the config is a copy the scheduler never reads and either is on."""
    scheduler_config, cache_config = vllm_config.scheduler_config, vllm_config.cache_config
    on = [
        flag
        for flag, value in (
            ("--no-enable-chunked-prefill", scheduler_config.enable_chunked_prefill),
            ("--no-enable-prefix-caching", cache_config.enable_prefix_caching),
        )
        if value
    ]
    if not on:
        return
    if vllm_config.parallel_config.distributed_executor_backend not in SHARED_CONFIG_BACKENDS:
        raise ValueError(
            "PrefillPrefixLMAttention: the pinned vLLM cannot turn off chunked prefill and prefix caching "
            f"for a non-causal layer from this worker; serve with {' '.join(on)}"
        )
    logger.info("Disabling chunked prefill and prefix caching: model has non-causal attention layers.")
    scheduler_config.enable_chunked_prefill = False
    cache_config.enable_prefix_caching = False
