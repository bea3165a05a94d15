"""P20: ``fused_moe_make_expert_params_mapping(self, ...)`` becomes the pin's ``FusedMoE.make_expert_params_mapping(...)``.

What: in a file whose every call of the function has a pinned spelling, the model argument is
dropped and the call goes to the pin's classmethod; the import becomes ``FusedMoE``::

    from vllm.model_executor.layers.fused_moe import fused_moe_make_expert_params_mapping
    expert_params_mapping = fused_moe_make_expert_params_mapping(
        self, ckpt_gate_proj_name="gate_proj", ckpt_down_proj_name="down_proj",
        ckpt_up_proj_name="up_proj", num_experts=self.config.n_routed_experts)
    # becomes
    from vllm.model_executor.layers.fused_moe import FusedMoE
    expert_params_mapping = FusedMoE.make_expert_params_mapping(
        ckpt_gate_proj_name="gate_proj", ckpt_down_proj_name="down_proj",
        ckpt_up_proj_name="up_proj", num_experts=self.config.n_routed_experts)

One count per call and per import statement.

Why: both build the list ``(param_name, weight_name, expert_id, shard_id)`` for every physical
expert and each of w1/w2/w3, mapping physical to logical expert ids through the same
``EplbState.build_initial_global_physical_to_logical_map``; a model's ``load_weights`` loop
uses it to load ``experts.<id>.<proj>.`` checkpoint tensors into the fused expert
parameters. What differs is where those parameters live: upstream's runner holds them under
``experts.routed_experts.`` (with LoRA's ``base_layer.`` when present), the pin's ``FusedMoE``
directly under ``experts.``, which is what the classmethod names. In a migrated file the
experts are the pin's ``FusedMoE`` (P19 or the pin's own layers), so the pin's names are the
ones that load; LoRA on fused experts is not what 0.13's loaders handle either.

Left alone (the import stays unresolved and step 6 reports it): a file spelling
``routed_experts`` in a string (its loader names upstream's layout by hand), a call passing
``routed_experts_prefix``, no model argument first, ``ckpt_up_proj_name=None`` (the pin's
classmethod would build entries for a missing projection), ``*args``/``**kwargs``, or the
function used other than called.

When: MoE models of upstream 0.31+ with a hand-written ``load_weights`` (DeepSeek-V2 family,
GLM-4-MoE-Lite, Llama 4, Step 3.5, ...), pins of the 0.13 line.
"""

from __future__ import annotations

import libcst as cst

from .base import PatchTransformer
from .syntax import drop_items
from .translation import (
    Api,
    Translated,
    Translation,
    Uses,
    has_star,
    keywords,
    literal,
    positional,
    replace_alias,
    runner_layout_refusal,
)

ID = "P20"
NAME = "expert-params-mapping"
PINNED = "==0.13.*"

API = Api(
    "fused_moe_make_expert_params_mapping",
    ("vllm.model_executor.layers.fused_moe", "vllm.model_executor.layers.fused_moe.layer"),
)
PINNED_CLASS = "FusedMoE"
PINNED_METHOD = "make_expert_params_mapping"
PARAMETERS = ("ckpt_gate_proj_name", "ckpt_down_proj_name", "ckpt_up_proj_name", "num_experts", "num_redundant_experts")
"""After the model argument, upstream's and the pin's parameters, in the same order."""


def _call_refusal(call: cst.Call, uses: Uses) -> str | None:
    given = keywords(call)
    if has_star(call):
        return "*args/**kwargs cannot be checked"
    if not positional(call) or call.args[0].keyword is not None:
        return "no model argument first"
    if len(positional(call)) > 1 + len(PARAMETERS) or not set(given) <= set(PARAMETERS):
        return "routed_experts_prefix (or another upstream-only argument) has no pinned spelling"
    up = given.get("ckpt_up_proj_name")
    if up is None and len(positional(call)) > 3:
        up = positional(call)[3]
    if up is not None and literal(up.value) is None:
        return "ckpt_up_proj_name=None: the pin's classmethod would map a projection the model lacks"
    return None


TRANSLATION = Translation(API, Uses, runner_layout_refusal, _call_refusal)
relevant, refusal, rewritten_imports = TRANSLATION.relevant, TRANSLATION.refusal, TRANSLATION.rewritten_imports


class Transformer(Translated, PatchTransformer):
    translation = TRANSLATION

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        if not self.imports_api(updated_node):
            return updated_node
        rewritten = replace_alias(updated_node, API.name, [PINNED_CLASS])
        if rewritten is not updated_node:
            self.count += 1
        return rewritten

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        if not self.calls_api(updated_node):
            return updated_node
        self.count += 1
        return updated_node.with_changes(
            func=cst.Attribute(value=cst.Name(PINNED_CLASS), attr=cst.Name(PINNED_METHOD)),
            args=drop_items(list(updated_node.args), {0}),
        )
