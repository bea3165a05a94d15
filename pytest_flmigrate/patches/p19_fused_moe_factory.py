"""P19: ``FusedMoEFactory(...)`` and ``MoERunner`` come from the shim running upstream's runner on the pin's ``FusedMoE``.

What: in a file whose every ``FusedMoEFactory`` call has a pinned spelling, the imports of
``FusedMoEFactory``, ``MoERunner`` and the fused-shared-experts switches point at ``vllm_fl.compat.moe_runner``, which step 4 writes
beside the migrated files (``pytest_flmigrate/autofix/shims/moe_runner.py``); the calls, the
layer's calls and ``MoERunner`` annotations stay as upstream spells them::

    from vllm.model_executor.layers.fused_moe import FusedMoEFactory, GateLinear, MoERunner
    self.experts = FusedMoEFactory(shared_experts=self.shared_experts, gate=self.gate, num_experts=n,
                                   top_k=k, hidden_size=h, intermediate_size=i, use_grouped_topk=True,
                                   num_expert_group=g, topk_group=t, scoring_func="sigmoid",
                                   e_score_correction_bias=self.e_score_correction_bias, prefix=...)
    # becomes
    from vllm.model_executor.layers.fused_moe import GateLinear
    from vllm_fl.compat.moe_runner import FusedMoEFactory, MoERunner

One count per import statement and per string rewritten (below).

Why: upstream 0.31 split ``FusedMoE`` into a factory building a router, ``RoutedExperts`` and a
``MoERunner``. The shim's factory builds the pin's ``FusedMoE`` with the same routing arguments
(softmax or sigmoid scores, grouped top-k with ``num_expert_group``/``topk_group`` and
``e_score_correction_bias``, ``routed_scaling_factor``, a custom routing function: on CPU
upstream's router and the pin's compute them with the same code), the pin's fused SwiGLU
experts, and upstream's final all-reduce (``reduce_results=True`` by default where the pin's
default is False); around the pin's layer it does what upstream's runner does: a ``gate=``
computes the logits from the hidden states (the caller's ``router_logits`` are ignored), shared
experts' output is added to the routed output, and ``apply_routed_scale_to_output`` scales the
routed output instead of the weights. Shared experts fused into the routed GEMM (ROCm AITER)
are a kernel fusion the pin lacks: the shim's ``resolve_layer_fused_shared_expert`` and
``is_model_fused_shared_expert_compatible`` (imported from the shim too) resolve it off, and the
shared experts run as their own MLP, the same sum. The parameters live where the pin's loaders expect them
(``experts.w13_weight`` where upstream's runner has ``experts.routed_experts.w13_weight``):
the pin's ``FusedMoE.make_expert_params_mapping`` (P20) and the stacked-weights port (P21) name
them, and string literals naming upstream's layout (a loader's ``".experts.routed_experts.w13_weight"``)
name the pin's (``".experts.w13_weight"``), one count each. ``MoERunner`` (upstream's
type of the factory's layers, used in annotations) is the shim's layer class.

Refused at step 4, with the line (the migration writes nothing): a call passing an argument
the shim does not take (routers of their own, latent transforms, hash or zero-expert routing,
custom runner or expert classes: what they compute has no pinned spelling) or a literal value
outside the shim's ``ACCEPTED`` (an activation other than SiLU and GELU-tanh, which the shim runs
unfused with the pin's activation layer; a SwiGLU limit, sqrt-softplus scores, a
padded or transposed checkpoint, shared experts fused into the routed GEMM; a value known only
at run time raises there, naming the argument), more than four positional arguments,
``*args``/``**kwargs``, ``FusedMoEFactory`` used other than called, ``MoERunner`` called or
subclassed, the layer called with more than ``hidden_states`` and ``router_logits``, or a
string naming ``routed_experts`` other than as ``experts.routed_experts.``.

When: MoE models of upstream 0.31+ (Cohere2-MoE, EXAONE-MoE, A.X-K1, Laguna, HY-V3, ...), at
any pin that lacks ``FusedMoEFactory`` and whose ``FusedMoE`` takes the shim's calls.
"""

from __future__ import annotations

import libcst as cst

from .translation import (
    RUNNER_LAYOUT,
    Api,
    FlatLayoutStrings,
    ShimRedirect,
    Translation,
    Translations,
    Uses,
    accepted,
    api_gap,
    code,
    has_star,
    keywords,
    positional,
    runner_layout_refusal,
    shim_call_refusal,
)

ID = "P19"
NAME = "fused-moe-factory"
PINNED = ">=0"  # keyed by the trees: pin_gap

MOE = "vllm.model_executor.layers.fused_moe"
API = Api("FusedMoEFactory", (MOE, f"{MOE}.layer"))
RUNNER = Api("MoERunner", (MOE, f"{MOE}.runner.moe_runner"))
FUSED_SHARED = (
    Api("resolve_layer_fused_shared_expert", (f"{MOE}.utils",)),
    Api("is_model_fused_shared_expert_compatible", (f"{MOE}.utils",)),
)
"""Upstream's switches for shared experts fused into the routed GEMM: the shim's resolve it off."""
SHIM = "moe_runner"
"""``pytest_flmigrate/autofix/shims/moe_runner.py``, written as ``vllm_fl/compat/moe_runner.py``."""
TARGET = "the pin's FusedMoE"
"""What of the pin the reasons of a refused call name."""
FORWARD = ("hidden_states", "router_logits")
"""The parameters of the shim's layer's ``forward``."""


def layer_calls_refusal(uses: FactoryLayers, forward: tuple[str, ...]) -> tuple[cst.CSTNode, str] | None:
    """The first call of a factory-built layer passing more than the layer's ``forward`` parameters."""
    takes = f"{', '.join(forward[:-1])} and {forward[-1]}"
    for key in sorted(uses.layers):
        for call in uses.attribute_calls.get(key, []):
            if has_star(call) or len(positional(call)) > len(forward) or not set(keywords(call)) <= set(forward):
                return call, f"{code(call)}: the layer takes only {takes}"
    return None


def _file_refusal(uses: FactoryLayers) -> tuple[cst.CSTNode, str] | None:
    """The fused-experts checks, then the layers' own calls: the shim's take two arguments."""
    return runner_layout_refusal(uses) or layer_calls_refusal(uses, FORWARD)


def _self_attribute(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
        return node.attr.value
    return None


class FactoryLayers(Uses):
    """The uses, and per class: the ``self`` attributes a factory call is assigned to and the
    calls of ``self.<attr>``."""

    def __init__(self, names: set[str]) -> None:
        super().__init__(names)
        self.classes: list[cst.ClassDef | None] = [None]
        self.layers: set[tuple[int, str]] = set()  # (id(class), attr)
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
        for target in node.targets:
            attr = _self_attribute(target.target)
            if attr is not None and self.classes[-1] is not None:
                self.layers.add((id(self.classes[-1]), attr))

    def visit_Call(self, node: cst.Call) -> None:
        super().visit_Call(node)
        attr = _self_attribute(node.func)
        if attr is not None and self.classes[-1] is not None:
            self.attribute_calls.setdefault((id(self.classes[-1]), attr), []).append(node)


def _runner_file_refusal(uses: Uses) -> tuple[cst.CSTNode, str] | None:
    return (uses.bases[0], "a class derives from upstream's runner") if uses.bases else None


def _runner_call_refusal(call: cst.Call, uses: Uses) -> str:
    return "upstream's runner constructor; the shim builds runners from FusedMoEFactory"


FACTORY = Translation(API, FactoryLayers, _file_refusal, shim_call_refusal(SHIM, API.name, TARGET))
TRANSLATION = Translations(
    (
        FACTORY,
        Translation(RUNNER, Uses, _runner_file_refusal, _runner_call_refusal),
        *(Translation(api, Uses, accepted, accepted) for api in FUSED_SHARED),
    )
)
relevant, refusal, rewritten_imports = TRANSLATION.relevant, TRANSLATION.refusal, TRANSLATION.rewritten_imports
pin_gap = api_gap(TRANSLATION.apis)


class Transformer(FlatLayoutStrings, ShimRedirect):
    translation = TRANSLATION
    shim = SHIM

    def visit_Module(self, node: cst.Module) -> None:
        super().visit_Module(node)
        self.visits_expressions = self._on and RUNNER_LAYOUT[0] in node.code
