# SPDX-License-Identifier: Apache-2.0
"""Upstream vLLM's ``FusedMoEFactory`` on a vLLM whose ``FusedMoE`` is that factory under its former name.

Written into the plugin by pytest-flmigrate (catalog P32) for migrated models that build their
MoE layers with upstream's ``FusedMoEFactory`` (0.31+) at a pin where ``FusedMoE`` is already
the factory function building a router, ``RoutedExperts`` and a ``MoERunner``. The layers are
the pin's own: the arguments both spell go to its ``FusedMoE`` as they are; the ones upstream
added are taken where their value asks for what the pin's factory does anyway:

- ``reduce_results=True``: the pin's runner always all-reduces the layer's output;
- ``fuse_shared_experts=False``: upstream fuses no shared expert into the routed GEMM, so
  ``n_shared_experts`` (which asks the pin's factory to fuse them on ROCm AITER) is not passed
  on and the shared experts run as their own MLP (``shared_expert_prefix`` only names fused ones);
- ``intermediate_pad=None``, ``skip_padding=False``: the backend pads as the pin's does;
- the default ``ckpt_names``, an untransposed checkpoint, no SiTU activation parameters and no
  vision-language routing bias (``bias_vl``, ``image_sentinel_lo``): what the pin's experts load
  and compute.

``resolve_layer_fused_shared_expert`` and ``is_model_fused_shared_expert_compatible`` (upstream's
switches for that fusion) resolve it off.

``ACCEPTED`` lists those arguments with the values that have a pinned spelling: any other value
raises here, with the argument named (step 4 refuses literal ones before writing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from vllm.model_executor.layers.fused_moe import FusedMoE, MoERunner

ACCEPTED = {
    "intermediate_pad": (None,),
    "activation_situ_beta": (None,),
    "activation_situ_linear_beta": (None,),
    "reduce_results": (True,),
    "ckpt_names": (("gate_proj", "down_proj", "up_proj"),),
    "is_fused_checkpoint_transposed": (False,),
    "fuse_shared_experts": (False,),
    "bias_vl": (None,),
    "image_sentinel_lo": (0,),
    "skip_padding": (False,),
}
"""Factory arguments the pin's ``FusedMoE`` lacks, with the values that ask for what it does."""


def _refuse_unspelled(prefix: str, given: dict[str, Any]) -> None:
    """Raise, naming the argument, for a value of ``ACCEPTED``'s arguments the pin cannot spell."""
    for name, value in given.items():
        if not any(value is allowed or value == allowed for allowed in ACCEPTED[name]):
            shown = "a tensor" if isinstance(value, torch.Tensor) else repr(value)
            raise NotImplementedError(
                f"{prefix}: FusedMoEFactory({name}={shown}) has no spelling on this vLLM's FusedMoE "
                f"(it takes {' or '.join(repr(v) for v in ACCEPTED[name])}); port the layer by hand"
            )


def FusedMoEFactory(  # noqa: N802 (upstream's name)
    num_experts: int,
    top_k: int,
    hidden_size: int,
    intermediate_size: int,
    *,
    intermediate_pad: int | None = None,
    params_dtype: torch.dtype | None = None,
    renormalize: bool = True,
    use_grouped_topk: bool = False,
    num_expert_group: int | None = None,
    topk_group: int | None = None,
    quant_config: Any = None,
    tp_size: int | None = None,
    dp_size: int | None = None,
    pcp_size: int | None = None,
    prefix: str = "",
    custom_routing_function: Callable | None = None,
    router: Any = None,
    scoring_func: str = "softmax",
    routed_scaling_factor: float = 1.0,
    swiglu_limit: float | None = None,
    swiglu_alpha: float | None = None,
    swiglu_beta: float | None = None,
    activation_situ_beta: float | None = None,
    activation_situ_linear_beta: float | None = None,
    e_score_correction_bias: torch.Tensor | None = None,
    apply_router_weight_on_input: bool = False,
    activation: str = "silu",
    enable_eplb: bool = False,
    num_redundant_experts: int = 0,
    has_bias: bool = False,
    is_sequence_parallel: bool = False,
    reduce_results: bool = True,
    ckpt_names: tuple[str, str, str | None] = ("gate_proj", "down_proj", "up_proj"),
    is_fused_checkpoint_transposed: bool = False,
    n_shared_experts: int | None = None,
    fuse_shared_experts: bool = False,
    shared_expert_prefix: str | None = None,
    router_logits_dtype: torch.dtype | None = None,
    gate: torch.nn.Module | None = None,
    shared_experts: torch.nn.Module | None = None,
    shared_expert_gate: torch.nn.Module | None = None,
    routed_input_transform: torch.nn.Module | None = None,
    routed_output_transform: torch.nn.Module | None = None,
    apply_routed_scale_to_output: bool = False,
    zero_expert_type: str | None = None,
    hash_indices_table: torch.Tensor | None = None,
    bias_vl: torch.Tensor | None = None,
    image_sentinel_lo: int = 0,
    runner_cls: type[MoERunner] | None = None,
    runner_args: dict[str, Any] | None = None,
    routed_experts_cls: type | None = None,
    routed_experts_args: dict[str, Any] | None = None,
    skip_padding: bool = False,
) -> MoERunner:
    """Upstream's factory: the pin's ``FusedMoE`` with the arguments both spell.

    ``n_shared_experts`` and ``shared_expert_prefix`` only matter to shared experts fused into
    the routed GEMM, which ``fuse_shared_experts=False`` leaves off.
    """
    _refuse_unspelled(
        prefix,
        {
            "intermediate_pad": intermediate_pad,
            "activation_situ_beta": activation_situ_beta,
            "activation_situ_linear_beta": activation_situ_linear_beta,
            "reduce_results": reduce_results,
            "ckpt_names": tuple(ckpt_names),
            "is_fused_checkpoint_transposed": is_fused_checkpoint_transposed,
            "fuse_shared_experts": fuse_shared_experts,
            "bias_vl": bias_vl,
            "image_sentinel_lo": image_sentinel_lo,
            "skip_padding": skip_padding,
        },
    )
    # every argument spelled out: step 4 checks this call against the pin's FusedMoE (shim_rejected)
    return FusedMoE(
        num_experts=num_experts,
        top_k=top_k,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        params_dtype=params_dtype,
        renormalize=renormalize,
        use_grouped_topk=use_grouped_topk,
        num_expert_group=num_expert_group,
        topk_group=topk_group,
        quant_config=quant_config,
        tp_size=tp_size,
        dp_size=dp_size,
        pcp_size=pcp_size,
        prefix=prefix,
        custom_routing_function=custom_routing_function,
        router=router,
        scoring_func=scoring_func,
        routed_scaling_factor=routed_scaling_factor,
        swiglu_limit=swiglu_limit,
        swiglu_alpha=swiglu_alpha,
        swiglu_beta=swiglu_beta,
        e_score_correction_bias=e_score_correction_bias,
        apply_router_weight_on_input=apply_router_weight_on_input,
        activation=activation,
        enable_eplb=enable_eplb,
        num_redundant_experts=num_redundant_experts,
        has_bias=has_bias,
        is_sequence_parallel=is_sequence_parallel,
        n_shared_experts=None,
        router_logits_dtype=router_logits_dtype,
        gate=gate,
        shared_experts=shared_experts,
        shared_expert_gate=shared_expert_gate,
        routed_input_transform=routed_input_transform,
        routed_output_transform=routed_output_transform,
        apply_routed_scale_to_output=apply_routed_scale_to_output,
        zero_expert_type=zero_expert_type,
        hash_indices_table=hash_indices_table,
        runner_cls=runner_cls,
        runner_args=runner_args,
        routed_experts_cls=routed_experts_cls,
        routed_experts_args=routed_experts_args,
    )


def resolve_layer_fused_shared_expert(
    quant_config: Any, prefix: str, shared_expert_name: str = "shared_experts"
) -> bool:
    """Whether this layer's shared experts are fused into the routed GEMM: never here."""
    return False


def is_model_fused_shared_expert_compatible(layers: Any, moe_cls: type, moe_name: str) -> bool:
    """Whether the model's MoE layers all fuse their shared experts: never here."""
    return False
