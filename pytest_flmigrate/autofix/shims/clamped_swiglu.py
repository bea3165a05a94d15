# SPDX-License-Identifier: Apache-2.0
"""Upstream vLLM's clamped SwiGLU activations, for a pin that lacks them.

Written into the plugin by pytest-flmigrate (catalog P26) for migrated models whose MLPs use
``SwigluStepAndMul`` or ``SiluAndMulWithClamp`` (upstream 0.31+, e.g. Step 3.5, Bailing-MoE v3,
EXAONE 4). Each computes upstream's ``forward_native`` on every platform: upstream's CUDA and
XPU kernels compute the same function, and its CPU path is ``forward_native`` itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SwigluStepAndMul(nn.Module):
    """``silu(x[:d]).clamp(max=limit) * x[d:].clamp(-limit, limit)``, ``d = x.shape[-1] // 2``."""

    def __init__(self, limit: float = 7.0) -> None:
        super().__init__()
        if limit is None:
            raise ValueError("SwigluStepAndMul requires limit to be set.")
        self.limit = limit

    def forward_native(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = x.chunk(2, dim=-1)
        gate = F.silu(gate)
        gate = gate.clamp(max=self.limit)
        up = up.clamp(min=-self.limit, max=self.limit)
        return gate * up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_native(x)

    def extra_repr(self) -> str:
        return f"limit={repr(self.limit)}"


class SiluAndMulWithClamp(nn.Module):
    """``g * sigmoid(alpha * g) * (u + beta)`` with ``g = x[:d].clamp(max=limit)`` and
    ``u = x[d:].clamp(-limit, limit)``, ``d = x.shape[-1] // 2``."""

    def __init__(self, swiglu_limit: float, alpha: float = 1.0, beta: float = 0.0, *, compile_native: bool = True):
        super().__init__()
        self.swiglu_limit = float(swiglu_limit)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def forward_native(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1] // 2
        gate = torch.clamp(x[..., :d], max=self.swiglu_limit)
        up = torch.clamp(x[..., d:], min=-self.swiglu_limit, max=self.swiglu_limit)
        return gate * torch.sigmoid(self.alpha * gate) * (up + self.beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_native(x)

    def extra_repr(self) -> str:
        return f"swiglu_limit={self.swiglu_limit!r}, alpha={self.alpha!r}, beta={self.beta!r}"
