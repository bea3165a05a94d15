# SPDX-License-Identifier: Apache-2.0
"""Upstream vLLM's ``MMEncoderAttention`` API on a vLLM 0.13 pin.

Written into the plugin by pytest-flmigrate (catalog P28) for migrated vision and audio encoders
that import upstream's ``MMEncoderAttention`` (``vllm.model_executor.layers.attention``). Upstream
(0.31+) computes the encoder's sequence metadata once per batch with three classmethods and
passes ``sequence_lengths`` to every attention call (FlashInfer's cuDNN path reads it); vLLM
0.13's class has neither. Here ``MMEncoderAttention`` is the pin's, plus:

- ``compute_max_seqlen``, ``maybe_compute_seq_lens`` and ``maybe_recompute_cu_seqlens``, upstream's
  code for every backend the pin's class runs (FlashAttention, ROCm AITER FA, torch SDPA):
  the longest sequence for FlashAttention backends (0 otherwise), no sequence lengths, and the
  cumulative lengths moved to the device;
- ``forward(..., sequence_lengths=None)``, handing the rest to the pin's forward.

FlashInfer, the one backend for which upstream pads the lengths into buckets and reads
``sequence_lengths``, has no path in the pin's class: asking for it raises.

The pin's own models keep the pin's class: only the migrated files import this one.
"""

from __future__ import annotations

import numpy as np
import torch
from vllm.attention.backends.registry import AttentionBackendEnum
from vllm.attention.layers.mm_encoder_attention import MMEncoderAttention as PinnedMMEncoderAttention

MAX_SEQLEN_BACKENDS = (
    AttentionBackendEnum.FLASH_ATTN,
    AttentionBackendEnum.ROCM_AITER_FA,
    AttentionBackendEnum.TRITON_ATTN,
)
"""The backends for which upstream computes the longest sequence (FlashInfer aside)."""


def _no_flashinfer(attn_backend: AttentionBackendEnum) -> None:
    if attn_backend == AttentionBackendEnum.FLASHINFER:
        raise NotImplementedError(
            "MMEncoderAttention: the pinned vLLM has no FlashInfer path for encoder attention; "
            "pick another --mm-encoder-attn-backend"
        )


class MMEncoderAttention(PinnedMMEncoderAttention):
    """The pin's encoder attention with upstream's sequence-metadata helpers."""

    @classmethod
    def compute_max_seqlen(cls, attn_backend: AttentionBackendEnum, cu_seqlens: np.ndarray) -> int:
        _no_flashinfer(attn_backend)
        if attn_backend in MAX_SEQLEN_BACKENDS and len(cu_seqlens) >= 2:
            return int((cu_seqlens[1:] - cu_seqlens[:-1]).max())
        return 0

    @classmethod
    def maybe_compute_seq_lens(
        cls, attn_backend: AttentionBackendEnum, cu_seqlens: np.ndarray, device: torch.device
    ) -> torch.Tensor | None:
        _no_flashinfer(attn_backend)
        return None

    @classmethod
    def maybe_recompute_cu_seqlens(
        cls,
        attn_backend: AttentionBackendEnum,
        cu_seqlens: np.ndarray,
        hidden_size: int,
        tp_size: int,
        device: torch.device,
        fp8_padded_hidden_size: int | None = None,
    ) -> torch.Tensor:
        _no_flashinfer(attn_backend)
        return torch.from_numpy(np.asarray(cu_seqlens)).to(device=device, non_blocking=True)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        cu_seqlens: torch.Tensor | None = None,
        max_seqlen: torch.Tensor | None = None,
        sequence_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if sequence_lengths is not None:
            raise ValueError(
                "MMEncoderAttention: sequence_lengths is read by FlashInfer only, which the pinned vLLM "
                "has no encoder path for; maybe_compute_seq_lens returns None here"
            )
        return super().forward(query, key, value, cu_seqlens, max_seqlen)
