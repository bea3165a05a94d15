# SPDX-License-Identifier: Apache-2.0
"""Upstream vLLM's ``GateLinear`` signature on a vLLM whose ``GateLinear`` takes fewer arguments.

Written into the plugin by pytest-flmigrate (catalog P33) for migrated models that build their
MoE router gate with upstream's ``GateLinear`` at a pin whose own ``GateLinear`` lacks some of its
arguments (vLLM 0.24 has no ``skip_bias_add``, ``quant_config`` or ``return_bias``). The gate is
the pin's class, its weights, loader and router GEMM tiers; the arguments it lacks are taken where
the pin can spell them:

- ``skip_bias_add``: set on the layer after construction; the pin's portable tier is
  ``ReplicatedLinear.forward``, which reads it (the bias returned, not added), and its
  specialised tiers run only without a bias, where the flag changes nothing;
- ``quant_config``: the pin's ``GateLinear`` builds an unquantized gate, which is what upstream's
  builds with ``quant_config=None``;
- ``return_bias``: the pin's gate always returns ``(logits, bias)``, upstream's default.

``ACCEPTED`` lists those arguments with the values that have a pinned spelling: any other value
raises here, with the argument named (step 4 refuses literal ones before writing).
"""

from __future__ import annotations

import torch
from vllm.model_executor.layers.fused_moe import GateLinear as PinnedGateLinear

ACCEPTED = {
    "quant_config": (None,),
    "return_bias": (True,),
}
"""Arguments of upstream's ``GateLinear`` the pin's lacks whose other values it cannot spell."""


class GateLinear(PinnedGateLinear):
    """The pin's MoE router gate with upstream's signature."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        bias: bool = False,
        out_dtype: torch.dtype | None = None,
        params_dtype: torch.dtype | None = None,
        force_fp32_compute: bool = False,
        skip_bias_add: bool = False,
        quant_config: object = None,
        prefix: str = "",
        return_bias: bool = True,
    ) -> None:
        for name, value in {"quant_config": quant_config, "return_bias": return_bias}.items():
            if not any(value is allowed or value == allowed for allowed in ACCEPTED[name]):
                raise NotImplementedError(
                    f"{prefix}: GateLinear({name}={value!r}) has no spelling on this vLLM's GateLinear "
                    f"(it takes {' or '.join(repr(v) for v in ACCEPTED[name])}); port the gate by hand"
                )
        super().__init__(
            input_size,
            output_size,
            bias=bias,
            out_dtype=out_dtype,
            params_dtype=params_dtype,
            force_fp32_compute=force_fp32_compute,
            prefix=prefix,
        )
        self.skip_bias_add = skip_bias_add
