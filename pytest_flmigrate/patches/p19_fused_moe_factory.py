"""P19: ``FusedMoEFactory(...)`` becomes the pin's ``FusedMoE`` (``SharedFusedMoE`` with shared experts).

What: in a file whose every ``FusedMoEFactory`` call has a pinned spelling, each call builds the
pin's layer, with upstream's default ``reduce_results=True`` spelled out (the pin defaults to
False) and upstream-only keywords carrying their default dropped; a call passing
``shared_experts`` builds ``SharedFusedMoE``, and the layer's calls in the same class add the
two outputs the pin returns, as upstream's runner does::

    self.experts = FusedMoEFactory(num_experts=n, top_k=k, hidden_size=h, intermediate_size=i,
                                   prefix=f"{prefix}.experts", shared_experts=self.shared_experts)
    ...
    final_hidden_states = self.experts(hidden_states, router_logits)
    # becomes
    self.experts = SharedFusedMoE(num_experts=n, top_k=k, hidden_size=h, intermediate_size=i,
                                  prefix=f"{prefix}.experts", shared_experts=self.shared_experts, reduce_results=True)
    ...
    final_hidden_states = sum(out for out in self.experts(hidden_states, router_logits) if out is not None)

The import of ``FusedMoEFactory`` becomes imports of ``FusedMoE`` / ``SharedFusedMoE`` (both
exported by the pin's ``vllm.model_executor.layers.fused_moe``). One count per call rewritten
and per import statement.

Why: upstream 0.31 split ``FusedMoE`` into a factory building a router, ``RoutedExperts`` and a
``MoERunner``; for the keywords in ``KEYWORDS`` the pieces compute what the pin's ``FusedMoE``
computes (softmax top-k or the custom routing function, called with the same keywords; the
fused SwiGLU experts; the final all-reduce), and with shared experts the runner returns
``shared + routed`` where the pin's ``SharedFusedMoE`` returns the pair ``(shared, routed)``
(``shared`` None without them), which the rewritten call adds in the same order. What
differs does not change the result at the pin: the runner's parameters live one level deeper
(``experts.routed_experts.w13_weight`` upstream, ``experts.w13_weight`` in the pin), which only
matters to weight loading: the pin's ``FusedMoE.make_expert_params_mapping`` (P20) names the
pin's parameters, and a file spelling ``routed_experts`` in a string is left alone.

Left alone (the import stays unresolved and step 6 reports it): a file where any call passes a
keyword outside ``KEYWORDS`` (routers of their own: ``gate``, grouped top-k with scoring
functions and correction biases, ``ckpt_names``, latent transforms, zero experts, custom
runners; these change what is computed or loaded) or a ``DEFAULTS`` keyword with another
value, more than four positional arguments (the fifth differs), ``*args``/``**kwargs``,
``FusedMoEFactory`` used other than called, a shared-experts layer not assigned to a ``self``
attribute, or the layer called with more than ``hidden_states`` and ``router_logits``.

When: MoE models of upstream 0.31+ (Cohere2-MoE, OLMoE, Qwen2-MoE, InternS1-Pro, ...), pins of
the 0.13 line.
"""

from __future__ import annotations

import libcst as cst

from .base import PatchTransformer
from .syntax import append_args, drop_items, keyword_arg
from .translation import (
    NOT_LITERAL,
    Api,
    Translated,
    Translation,
    Uses,
    code,
    has_star,
    keywords,
    literal,
    positional,
    replace_alias,
    runner_layout_refusal,
)

ID = "P19"
NAME = "fused-moe-factory"
PINNED = "==0.13.*"

API = Api("FusedMoEFactory", ("vllm.model_executor.layers.fused_moe",))
PLAIN, SHARED = "FusedMoE", "SharedFusedMoE"

KEYWORDS = frozenset(
    {
        "num_experts",
        "top_k",
        "hidden_size",
        "intermediate_size",
        "params_dtype",
        "renormalize",
        "quant_config",
        "tp_size",
        "dp_size",
        "pcp_size",
        "prefix",
        "custom_routing_function",
        "enable_eplb",
        "num_redundant_experts",
        "has_bias",
        "is_sequence_parallel",
        "reduce_results",
        "apply_router_weight_on_input",
        "shared_experts",
    }
)
"""Keywords the pin's ``FusedMoE``/``SharedFusedMoE`` take with upstream's meaning."""
DEFAULTS = {
    "use_grouped_topk": False,
    "activation": "silu",
    "scoring_func": "softmax",
    "routed_scaling_factor": 1.0,
    "e_score_correction_bias": None,
}
"""Keywords both sides take, accepted only with upstream's default value (kept as written)."""
DROP_IF = {"apply_routed_scale_to_output": False, "intermediate_pad": None, "fuse_shared_experts": False}
"""Upstream-only keywords, dropped when they carry upstream's default."""
FORWARD_KEYWORDS = frozenset({"hidden_states", "router_logits"})
MAX_POSITIONAL = 4
"""Both signatures start (num_experts, top_k, hidden_size, intermediate_size)."""


def _call_refusal(call: cst.Call, uses: _Layers) -> str | None:
    if has_star(call):
        return "*args/**kwargs cannot be checked"
    if len(positional(call)) > MAX_POSITIONAL:
        return "a 5th positional argument is intermediate_pad upstream, params_dtype in the pin"
    for name, arg in keywords(call).items():
        if name in KEYWORDS:
            continue
        default = DEFAULTS.get(name, DROP_IF.get(name, NOT_LITERAL))
        if default is NOT_LITERAL:
            return f"{name}= has no pinned spelling with the same behaviour"
        if literal(arg.value) != default:
            return f"{name}= other than {default!r} has no pinned spelling with the same behaviour"
    if "shared_experts" in keywords(call) and id(call) not in uses.assigned:
        return "with shared experts the layer must be a self attribute (its calls add the pin's pair)"
    return None


def _file_refusal(uses: _Layers) -> str | None:
    """The fused-experts checks, then the layers' own calls: the pin's take two arguments."""
    why = runner_layout_refusal(uses)
    if why:
        return why
    for key in uses.layers:
        for call in uses.attribute_calls.get(key, []):
            if has_star(call) or len(positional(call)) > 2 or not set(keywords(call)) <= FORWARD_KEYWORDS:
                return f"{code(call)}: the pin's layer takes only hidden_states and router_logits"
    return None


def _self_attribute(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
        return node.attr.value
    return None


class _Layers(Uses):
    """The uses, and per class: the ``self`` attributes a factory call is assigned to (``shared``:
    with ``shared_experts``), the calls of ``self.<attr>``, and factory calls not so assigned."""

    def __init__(self, names: set[str]) -> None:
        super().__init__(names)
        self.classes: list[cst.ClassDef | None] = [None]
        self.assigned: dict[int, tuple[cst.ClassDef | None, str]] = {}  # id(call) -> (class, attr)
        self.layers: dict[tuple[int, str], bool] = {}  # (id(class), attr) -> shared
        self.attribute_calls: dict[tuple[int, str], list[cst.Call]] = {}

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        super().visit_ClassDef(node)
        self.classes.append(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.classes.pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        call = node.value
        if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Name) and call.func.value in self.names):
            return
        attr = _self_attribute(node.targets[0].target) if len(node.targets) == 1 else None
        if attr is not None and self.classes[-1] is not None:
            self.assigned[id(call)] = (self.classes[-1], attr)
            key = (id(self.classes[-1]), attr)
            self.layers[key] = self.layers.get(key, False) or "shared_experts" in keywords(call)

    def visit_Call(self, node: cst.Call) -> None:
        super().visit_Call(node)
        attr = _self_attribute(node.func)
        if attr is not None and self.classes[-1] is not None:
            self.attribute_calls.setdefault((id(self.classes[-1]), attr), []).append(node)


TRANSLATION = Translation(API, _Layers, _file_refusal, _call_refusal)
relevant, refusal, rewritten_imports = TRANSLATION.relevant, TRANSLATION.refusal, TRANSLATION.rewritten_imports


class Transformer(Translated, PatchTransformer):
    translation = TRANSLATION

    def visit_Module(self, node: cst.Module) -> None:
        super().visit_Module(node)
        layers = self.uses if isinstance(self.uses, _Layers) else None
        self._shared = frozenset(key for key, shared in layers.layers.items() if shared) if layers else frozenset()
        self._needed = (
            sorted({SHARED if "shared_experts" in keywords(call) else PLAIN for call in layers.calls}) if layers else []
        )
        self._classes: list[int] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(id(node))

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        self._classes.pop()
        return updated_node

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        if not self.imports_api(updated_node):
            return updated_node
        rewritten = replace_alias(updated_node, API.name, self._needed)
        if rewritten is updated_node:
            return updated_node
        self.count += 1
        return rewritten

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if self.uses is None:
            return updated_node
        if self.calls_api(updated_node):
            self.count += 1
            return _pinned_layer(updated_node)
        attr = _self_attribute(updated_node.func)
        if attr is not None and self._classes and (self._classes[-1], attr) in self._shared:
            summed = cst.parse_expression("sum(out for out in CALL if out is not None)").visit(_Put(updated_node))
            assert isinstance(summed, cst.BaseExpression)  # _Put replaces a name, never removes it
            return summed
        return updated_node


def _pinned_layer(call: cst.Call) -> cst.Call:
    args = list(call.args)
    kept = drop_items(args, {i for i, arg in enumerate(args) if arg.keyword and arg.keyword.value in DROP_IF})
    added = [] if "reduce_results" in keywords(call) else [keyword_arg("reduce_results", "True")]
    name = SHARED if "shared_experts" in keywords(call) else PLAIN
    return call.with_changes(func=cst.Name(name), args=append_args(kept, added))


class _Put(cst.CSTTransformer):
    """Puts ``call`` where the template spells ``CALL``."""

    def __init__(self, call: cst.Call) -> None:
        super().__init__()
        self.call = call

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        return self.call if updated_node.value == "CALL" else updated_node
