# SPDX-License-Identifier: Apache-2.0
"""Upstream vLLM's MoE runner API on the pin's ``FusedMoE``.

Written into the plugin by pytest-flmigrate (catalog P18, P19) for migrated models that build
their MoE layers with upstream's ``FusedMoEFactory`` (0.31+), type them as ``MoERunner`` or
route with ``GateLinear``. The layers run on the pin's ``FusedMoE``: its routing (softmax or
sigmoid top-k, grouped top-k with a correction bias, a custom routing function) and its fused
expert kernels, with the parameters where the pin's loaders expect them (``experts.w13_weight``).
What upstream's runner adds around those is done here, as upstream does it:

- ``gate``: a runner holding the router's gate computes the logits from the hidden states
  itself (the caller's ``router_logits`` are ignored);
- ``shared_experts``: their output is added to the routed experts' (the layer returns one
  tensor, as upstream's runner does);
- ``apply_routed_scale_to_output``: ``routed_scaling_factor`` scales the routed output instead
  of the routing weights (the shared output divided instead in float16, as upstream);
- sigmoid scores without grouping (a correction bias steering the choice, as upstream's
  ``FusedTopKBiasRouter``), which the pin's ``FusedMoE`` refuses, are its grouped top-k over a
  single group: the same experts and weights (upstream's router factory calls one-group grouping
  pure overhead and routes it without groups);
- an activation the pin's fused experts lack but its activation layers compute
  (``UNFUSED_ACTIVATIONS``: Gemma 4's ``gelu_tanh``): the layer routes as the pin's does and runs
  its experts unfused, one GEMM pair per expert in torch (``unfused_experts``) with the pin's
  activation layer, on the unquantized weights as loaded (the pin's kernels' weight packing is
  skipped: nothing reads it). Slower than a fused kernel on a GPU, the same sum.

Shared experts fused into the routed experts' GEMM (ROCm AITER) are a kernel fusion the pin's
``FusedMoE`` lacks: ``resolve_layer_fused_shared_expert`` and
``is_model_fused_shared_expert_compatible`` resolve it off, and the shared experts run as their
own MLP, computing the same sum.

``GateLinear`` is the pin's ``ReplicatedLinear`` with upstream's signature and its portable
forward (upstream's "tier 6": the input cast to the weight's dtype and the logits to
``out_dtype`` when one is set); upstream's specialised router GEMMs compute the same product.

``ACCEPTED`` lists the factory arguments that only some values of have a pinned spelling: any
other value raises here, with the argument named (step 4 refuses literal ones before writing).
The pin's own models keep the pin's classes: only the migrated files import these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn.parameter import Parameter
from vllm.distributed import tensor_model_parallel_all_reduce
from vllm.model_executor.layers.activation import GeluAndMul
from vllm.model_executor.layers.fused_moe import FusedMoE
from vllm.model_executor.layers.linear import ReplicatedLinear, UnquantizedLinearMethod
from vllm.platforms import current_platform

ACCEPTED = {
    "intermediate_pad": (None, 0),
    "activation": ("silu", "gelu_tanh"),
    "scoring_func": ("softmax", "sigmoid"),
    "swiglu_limit": (None,),
    "ckpt_names": (("gate_proj", "down_proj", "up_proj"),),
    "is_fused_checkpoint_transposed": (False,),
    "fuse_shared_experts": (False,),
}
"""Factory arguments whose other values have no pinned spelling: the pin's experts compute
SwiGLU with SiLU only (GELU-tanh runs unfused) and cannot clamp it, route with softmax or sigmoid
scores, load the checkpoint's per-expert ``gate_proj``/``down_proj``/``up_proj`` tensors unpadded (``intermediate_pad``
0 asks for no padding: what the pin does; None lets a backend choose, and only ROCm's pads) and
untransposed, and keep shared experts out of the routed grouped GEMM."""

#: activation -> the pin's activation layer computing it, for activations its fused experts lack
UNFUSED_ACTIVATIONS: dict[str, Callable[[], torch.nn.Module]] = {
    "gelu_tanh": lambda: GeluAndMul(approximate="tanh"),
}


def unfused_experts(
    x: torch.Tensor,
    w13: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    activation: torch.nn.Module,
    expert_map: torch.Tensor | None = None,
) -> torch.Tensor:
    """The routed experts' weighted sum, one expert at a time: ``w13`` holds each expert's gate and
    up projections stacked (the pin's layout), ``activation`` takes them concatenated, ``w2`` is
    the down projection; ``expert_map`` maps global expert ids to this rank's (-1: elsewhere)."""
    ids = topk_ids.long() if expert_map is None else expert_map[topk_ids.long()]
    out = torch.zeros_like(x)
    for expert in range(w13.shape[0]):
        token, slot = torch.where(ids == expert)
        if token.numel() == 0:
            continue
        hidden = activation(torch.nn.functional.linear(x[token], w13[expert]))
        routed = torch.nn.functional.linear(hidden, w2[expert]) * topk_weights[token, slot, None].to(x.dtype)
        out.index_add_(0, token, routed)
    return out


class GateLinear(ReplicatedLinear):
    """Upstream's MoE router gate: ``ReplicatedLinear`` whose logits may be cast to ``out_dtype``."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        bias: bool = False,
        out_dtype: torch.dtype | None = None,
        params_dtype: torch.dtype | None = None,
        force_fp32_compute: bool = False,
        skip_bias_add: bool = False,
        quant_config: Any = None,
        prefix: str = "",
        return_bias: bool = True,
    ) -> None:
        super().__init__(
            input_size,
            output_size,
            bias=bias,
            skip_bias_add=skip_bias_add,
            params_dtype=torch.float32 if force_fp32_compute else params_dtype,
            quant_config=quant_config,
            prefix=prefix,
            return_bias=return_bias,
        )
        self.out_dtype = out_dtype
        self.is_unquantized = isinstance(self.quant_method, UnquantizedLinearMethod)

    def set_out_dtype(self, out_dtype: torch.dtype) -> None:
        """Set the logits' dtype after init (once), as upstream allows."""
        if self.out_dtype is not None:
            raise ValueError("out_dtype has already been set")
        self.out_dtype = out_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, Parameter | None]:
        if self.out_dtype is not None and self.is_unquantized and x.dtype != self.weight.dtype:
            x = x.to(self.weight.dtype)
        base_output = super().forward(x)
        output_bias: Parameter | None = None
        if isinstance(base_output, tuple):
            output, output_bias = base_output
        else:
            output = base_output
        if self.out_dtype is not None and output.dtype != self.out_dtype:
            output = output.to(self.out_dtype)
        return output if not self.return_bias else (output, output_bias)


class MoERunner(FusedMoE):
    """The pin's ``FusedMoE`` with upstream's runner around it: gate, shared experts, output scale."""

    def __init__(
        self,
        *,
        gate: torch.nn.Module | None,
        shared_experts: torch.nn.Module | None,
        routed_output_scale: float,
        num_experts: int,
        top_k: int,
        hidden_size: int,
        intermediate_size: int,
        params_dtype: torch.dtype | None,
        reduce_results: bool,
        renormalize: bool,
        use_grouped_topk: bool,
        num_expert_group: int | None,
        topk_group: int | None,
        quant_config: Any,
        tp_size: int | None,
        dp_size: int | None,
        pcp_size: int | None,
        prefix: str,
        custom_routing_function: Callable | None,
        scoring_func: str,
        routed_scaling_factor: float,
        e_score_correction_bias: torch.Tensor | None,
        apply_router_weight_on_input: bool,
        activation: str,
        enable_eplb: bool,
        num_redundant_experts: int,
        has_bias: bool,
        is_sequence_parallel: bool,
    ) -> None:
        unfused = activation in UNFUSED_ACTIVATIONS
        # every argument spelled out: step 4 checks this call against the pin's FusedMoE (shim_rejected)
        super().__init__(
            num_experts=num_experts,
            top_k=top_k,
            hidden_size=hidden_size,
            intermediate_size=intermediate_size,
            params_dtype=params_dtype,
            reduce_results=reduce_results,
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
            scoring_func=scoring_func,
            routed_scaling_factor=routed_scaling_factor,
            e_score_correction_bias=e_score_correction_bias,
            apply_router_weight_on_input=apply_router_weight_on_input,
            activation="silu" if unfused else activation,
            enable_eplb=enable_eplb,
            num_redundant_experts=num_redundant_experts,
            has_bias=has_bias,
            is_sequence_parallel=is_sequence_parallel,
        )
        self.unfused_activation = UNFUSED_ACTIVATIONS[activation]() if unfused else None
        if unfused:
            unsupported = {
                "quant_config": quant_config is not None,
                "has_bias": has_bias,
                "apply_router_weight_on_input": apply_router_weight_on_input,
                "enable_eplb": enable_eplb,
                "is_sequence_parallel": is_sequence_parallel,
                "dp_size": self.dp_size > 1,
            }
            for name, given in unsupported.items():
                if given:
                    raise NotImplementedError(
                        f"{prefix}: FusedMoEFactory(activation={activation!r}) runs unfused on this vLLM, "
                        f"without {name}; port the layer by hand"
                    )
            # the pin's kernels pack or pad the weights after loading; the unfused experts read them as loaded
            self.quant_method.process_weights_after_loading = lambda layer: None
        self.router_gate = gate
        self._shared_experts = shared_experts
        self.routed_output_scale = routed_output_scale

    def forward(self, hidden_states: torch.Tensor, router_logits: torch.Tensor) -> torch.Tensor:
        if self.router_gate is not None:
            router_logits, _ = self.router_gate(hidden_states)
        shared_output = None
        if self._shared_experts is not None:
            shared_output = self._shared_experts(hidden_states)
            # their MLP does not reduce (upstream reduces the sum): reduce as the pin's routed output is
            if self.reduce_results and (self.tp_size > 1 or self.ep_size > 1) and not self.is_sequence_parallel:
                shared_output = tensor_model_parallel_all_reduce(shared_output)
        if self.unfused_activation is None:
            fused_output = super().forward(hidden_states=hidden_states, router_logits=router_logits)
        else:
            fused_output = self.unfused_forward(hidden_states, router_logits)
        if self.routed_output_scale != 1.0:
            if fused_output.dtype != torch.float16 or shared_output is None:
                fused_output = fused_output * self.routed_output_scale
            else:
                shared_output = shared_output * (1.0 / self.routed_output_scale)
        return fused_output if shared_output is None else shared_output + fused_output

    def unfused_forward(self, hidden_states: torch.Tensor, router_logits: torch.Tensor) -> torch.Tensor:
        """The routed output with the pin's routing (its CPU routing on a CPU, as its CPU experts
        route) and ``unfused_experts``."""
        if current_platform.is_cpu():
            from vllm.model_executor.layers.fused_moe.cpu_fused_moe import select_experts

            topk_weights, topk_ids = select_experts(
                hidden_states=hidden_states,
                router_logits=router_logits,
                top_k=self.top_k,
                use_grouped_topk=self.use_grouped_topk,
                renormalize=self.renormalize,
                topk_group=self.topk_group,
                num_expert_group=self.num_expert_group,
                custom_routing_function=self.custom_routing_function,
                scoring_func=self.scoring_func,
                routed_scaling_factor=self.routed_scaling_factor,
                e_score_correction_bias=self.e_score_correction_bias,
            )
        else:
            topk_weights, topk_ids, _ = self.select_experts(hidden_states=hidden_states, router_logits=router_logits)
        assert self.unfused_activation is not None
        output = unfused_experts(
            hidden_states,
            self.w13_weight,
            self.w2_weight,
            topk_weights,
            topk_ids,
            self.unfused_activation,
            self.expert_map,
        )
        if self.reduce_results and (self.tp_size > 1 or self.ep_size > 1):
            output = tensor_model_parallel_all_reduce(output)
        return output


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
    scoring_func: str = "softmax",
    routed_scaling_factor: float = 1.0,
    swiglu_limit: float | None = None,
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
    apply_routed_scale_to_output: bool = False,
) -> MoERunner:
    """Upstream's factory, building the layer on the pin's ``FusedMoE``.

    ``n_shared_experts`` and ``shared_expert_prefix`` only matter to shared experts fused into
    the routed GEMM (refused here); ``router_logits_dtype`` sizes upstream's dispatch buffers,
    while the logits the pin routes are the gate's output as the model computes it.
    """
    given = {
        "intermediate_pad": intermediate_pad,
        "activation": activation,
        "scoring_func": scoring_func,
        "swiglu_limit": swiglu_limit,
        "ckpt_names": tuple(ckpt_names),
        "is_fused_checkpoint_transposed": is_fused_checkpoint_transposed,
        "fuse_shared_experts": fuse_shared_experts,
    }
    for name, value in given.items():
        if value not in ACCEPTED[name]:
            raise NotImplementedError(
                f"{prefix}: FusedMoEFactory({name}={value!r}) has no spelling on this vLLM's FusedMoE "
                f"(it takes {' or '.join(repr(v) for v in ACCEPTED[name])}); port the layer by hand"
            )
    if scoring_func != "softmax" and not use_grouped_topk and custom_routing_function is None:
        use_grouped_topk, num_expert_group, topk_group = True, 1, 1
    return MoERunner(
        gate=gate,
        shared_experts=shared_experts,
        # upstream's router then routes with weights unscaled, and its runner scales the output
        routed_output_scale=routed_scaling_factor if apply_routed_scale_to_output else 1.0,
        num_experts=num_experts,
        top_k=top_k,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        params_dtype=params_dtype,
        reduce_results=reduce_results,
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
        scoring_func=scoring_func,
        routed_scaling_factor=1.0 if apply_routed_scale_to_output else routed_scaling_factor,
        e_score_correction_bias=e_score_correction_bias,
        apply_router_weight_on_input=apply_router_weight_on_input,
        activation=activation,
        enable_eplb=enable_eplb,
        num_redundant_experts=num_redundant_experts,
        has_bias=has_bias,
        is_sequence_parallel=is_sequence_parallel,
    )


def resolve_layer_fused_shared_expert(
    quant_config: Any, prefix: str, shared_expert_name: str = "shared_experts"
) -> bool:
    """Whether this layer's shared experts are fused into the routed GEMM: never on the pin."""
    return False


def is_model_fused_shared_expert_compatible(layers: Any, moe_cls: type, moe_name: str) -> bool:
    """Whether the model's MoE layers all fuse their shared experts: never on the pin."""
    return False
