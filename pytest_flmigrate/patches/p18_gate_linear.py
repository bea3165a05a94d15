"""P18: ``GateLinear`` (the MoE router's linear layer) becomes the pin's ``ReplicatedLinear``.

What: in a file whose every ``GateLinear`` call has a pinned spelling, the import points at
``ReplicatedLinear`` (kept under the name ``GateLinear``, so annotations and ``isinstance``
stay untouched) and each call not passing ``bias`` gets upstream's default ``bias=False``
spelled out, since ``ReplicatedLinear`` defaults to a bias::

    from vllm.model_executor.layers.fused_moe import FusedMoE, GateLinear
    self.gate = GateLinear(config.hidden_size, config.num_experts, prefix=f"{prefix}.gate")
    # becomes
    from vllm.model_executor.layers.fused_moe import FusedMoE
    from vllm.model_executor.layers.linear import ReplicatedLinear as GateLinear
    self.gate = GateLinear(config.hidden_size, config.num_experts, prefix=f"{prefix}.gate", bias=False)

``out_dtype=None`` and ``force_fp32_compute=False`` (upstream's defaults) are dropped. One
count per call changed and per import statement.

Why: upstream's ``GateLinear`` is a ``ReplicatedLinear`` subclass that picks a specialised
router GEMM on Hopper/Blackwell/gfx950 GPUs and otherwise runs ``ReplicatedLinear.forward``
unchanged (its "tier 6"); with no ``out_dtype`` the tiers compute the same product, so the
weights, their names, the loader and the output are the pin's ``ReplicatedLinear``'s. What
differs does not exist at the pin: the GEMM tiers (kernels 0.13 lacks) and the
``PluggableLayer`` registration under ``gate_linear`` (an out-of-tree override hook).

Left alone (the import stays unresolved and step 6 reports it): a file where any call passes
``out_dtype`` or ``force_fp32_compute`` (the logits' dtype changes routing numerics; the pin
has no such cast), more than three positional arguments (the fourth differs: ``out_dtype``
upstream, ``skip_bias_add`` in the pin), ``*args``/``**kwargs``, a subclass of ``GateLinear``,
or the ``out_dtype``/``set_out_dtype`` members.

When: MoE models of upstream 0.31+ (Cohere2-MoE, OLMoE, Qwen2-MoE, Mixtral, ...), pins of the
0.13 line.
"""

from __future__ import annotations

import libcst as cst

from .imports import ImportRedirectTransformer, Location
from .syntax import append_args, drop_items, keyword_arg
from .translation import Api, Translated, Translation, Uses, has_star, import_module, keywords, literal, positional

ID = "P18"
NAME = "gate-linear"
PINNED = "==0.13.*"

API = Api(
    "GateLinear", ("vllm.model_executor.layers.fused_moe", "vllm.model_executor.layers.fused_moe.router.gate_linear")
)
PINNED_CLASS: Location = ("vllm.model_executor.layers.linear", "ReplicatedLinear")
DROP_IF = {"out_dtype": None, "force_fp32_compute": False}
"""Keywords the pin lacks, dropped when they carry upstream's default (any other value leaves the file alone)."""
MEMBERS = ("out_dtype", "set_out_dtype")
"""Members only ``GateLinear`` has: a file reading them is left alone."""


def _file_refusal(uses: Uses) -> str | None:
    if uses.bases:
        return "a class derives from it (its GEMM tiers and members have no pinned counterpart)"
    if uses.attributes & set(MEMBERS):
        return "the file reads " + " / ".join(sorted(uses.attributes & set(MEMBERS))) + ", which ReplicatedLinear lacks"
    return None


def _call_refusal(call: cst.Call, uses: Uses) -> str | None:
    if has_star(call):
        return "*args/**kwargs cannot be checked"
    if len(positional(call)) > 3:
        return "a 4th positional argument is out_dtype upstream, skip_bias_add in the pin"
    for name, value in DROP_IF.items():
        arg = keywords(call).get(name)
        if arg is not None and literal(arg.value) != value:
            return f"{name} other than {value!r} changes the router logits' dtype; ReplicatedLinear has no such cast"
    return None


TRANSLATION = Translation(API, Uses, _file_refusal, _call_refusal)
relevant, refusal, rewritten_imports = TRANSLATION.relevant, TRANSLATION.refusal, TRANSLATION.rewritten_imports


class Transformer(Translated, ImportRedirectTransformer):
    translation = TRANSLATION
    visits_expressions = True

    def locate(self, module: str, name: str) -> Location:
        if self.uses is not None and name == API.name and module in API.modules:
            return PINNED_CLASS
        return module, name

    def module_of(self, node: cst.ImportFrom) -> str | None:
        return import_module(node, self.context.package) if self.imports_api(node) else None

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        if not self.calls_api(updated_node):
            return updated_node
        args = list(updated_node.args)
        kept = drop_items(args, {i for i, arg in enumerate(args) if arg.keyword and arg.keyword.value in DROP_IF})
        added = (
            []
            if len(positional(updated_node)) >= 3 or "bias" in keywords(updated_node)
            else [keyword_arg("bias", "False")]
        )
        if len(kept) == len(args) and not added:
            return updated_node
        self.count += 1
        return updated_node.with_changes(args=append_args(kept, added))
