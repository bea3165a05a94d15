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

from dataclasses import dataclass

import libcst as cst

from .base import PatchContext, PatchTransformer
from .syntax import append_args, drop_items, keyword_arg
from .translation import (
    NOT_LITERAL,
    Api,
    Uses,
    bound_names,
    code,
    has_star,
    import_module,
    keywords,
    literal,
    positional,
    replace_alias,
    translated_imports,
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


def relevant(source: str, context: PatchContext) -> bool:
    return API.name in source


def _call_refusal(call: cst.Call) -> str | None:
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
    return None


def _self_attribute(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
        return node.attr.value
    return None


class _Layers(cst.CSTVisitor):
    """Per class: the ``self`` attributes a factory call is assigned to (``shared``: with
    ``shared_experts``), the calls of ``self.<attr>``, and factory calls not so assigned."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names
        self.classes: list[cst.ClassDef | None] = [None]
        self.assigned: dict[int, tuple[cst.ClassDef | None, str]] = {}  # id(call) -> (class, attr)
        self.layers: dict[tuple[int, str], bool] = {}  # (id(class), attr) -> shared
        self.attribute_calls: dict[tuple[int, str], list[cst.Call]] = {}

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
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
        attr = _self_attribute(node.func)
        if attr is not None and self.classes[-1] is not None:
            self.attribute_calls.setdefault((id(self.classes[-1]), attr), []).append(node)


@dataclass(frozen=True)
class _Decision:
    refusal: str | None
    shared: frozenset[tuple[int, str]] = frozenset()  # (id(class), attr) of shared-experts layers
    needed: tuple[str, ...] = ()  # the pinned classes the import must bring


def decide(module: cst.Module, package: str) -> _Decision:
    names = bound_names(module, package, API)
    if not names:
        return _Decision("not imported from " + " or ".join(API.modules))
    uses = Uses.of(module, names)
    layers = _Layers(names)
    module.visit(layers)

    def why() -> str | None:
        if uses.others:
            return "used other than called"
        if any("routed_experts" in text for text in uses.strings):
            return "the file names upstream's routed_experts parameters in strings (its loader expects the runner's layout)"
        for call in uses.calls:
            reason = _call_refusal(call)
            if reason:
                return f"{code(call)}: {reason}"
            if "shared_experts" in keywords(call) and id(call) not in layers.assigned:
                return f"{code(call)}: with shared experts the layer must be a self attribute (its calls add the pin's pair)"
        for key in layers.layers:
            for call in layers.attribute_calls.get(key, []):
                if has_star(call) or len(positional(call)) > 2 or not set(keywords(call)) <= FORWARD_KEYWORDS:
                    return f"{code(call)}: the pin's layer takes only hidden_states and router_logits"
        return None

    return _Decision(
        why(),
        frozenset(key for key, shared in layers.layers.items() if shared),
        tuple(sorted({SHARED if "shared_experts" in keywords(call) else PLAIN for call in uses.calls})),
    )


def refusal(module: cst.Module, package: str) -> str | None:
    """Why the file's ``FusedMoEFactory`` is left alone, or None when every use is translated."""
    return decide(module, package).refusal


rewritten_imports = translated_imports(API, refusal)


class Transformer(PatchTransformer):
    def visit_Module(self, node: cst.Module) -> None:
        decision = decide(node, self.context.package)
        self._on = decision.refusal is None
        self._names = bound_names(node, self.context.package, API) if self._on else set()
        self._shared = decision.shared
        self._needed = list(decision.needed)
        self._classes: list[int] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(id(node))

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        self._classes.pop()
        return updated_node

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        if not self._on or import_module(updated_node, self.context.package) not in API.modules:
            return updated_node
        rewritten = replace_alias(updated_node, API.name, self._needed)
        if rewritten is updated_node:
            return updated_node
        self.count += 1
        return rewritten

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if not self._on:
            return updated_node
        func = updated_node.func
        if isinstance(func, cst.Name) and func.value in self._names:
            self.count += 1
            return _pinned_layer(updated_node)
        attr = _self_attribute(func)
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
