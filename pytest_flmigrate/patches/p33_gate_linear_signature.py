"""P33: ``GateLinear`` comes from a shim giving the pin's own ``GateLinear`` upstream's signature.

What: in a file whose every ``GateLinear`` call has a pinned spelling, the import of
``GateLinear`` points at ``vllm_fl.compat.gate_linear``, which step 4 writes beside the migrated
files (``pytest_flmigrate/autofix/shims/gate_linear.py``); calls, annotations and members stay as
upstream spells them::

    from vllm.model_executor.layers.fused_moe import FusedMoEFactory, GateLinear
    self.gate = GateLinear(h, n, bias=config.moe_gate_bias, skip_bias_add=True, quant_config=quant_config, prefix=p)
    # becomes
    from vllm.model_executor.layers.fused_moe import FusedMoEFactory
    from vllm_fl.compat.gate_linear import GateLinear

One count per import statement.

Why: upstream's ``GateLinear`` gained ``skip_bias_add``, ``quant_config`` and ``return_bias``
after the pin's (vLLM 0.24) was written; a model passing them fails at construction
(``unexpected keyword argument 'skip_bias_add'``). The shim's class is the pin's ``GateLinear``
(its weights, loader and router GEMM tiers) with upstream's signature: ``skip_bias_add`` is set on
the layer, which the pin's portable tier (``ReplicatedLinear.forward``) reads, and the other two
are taken at the values the pin's gate has (``quant_config=None``: unquantized;
``return_bias=True``).

Refused at step 4, with the line (the migration writes nothing): a call passing an argument the
shim does not take, a literal value outside its ``ACCEPTED`` (a value known only at run time
raises there, naming the argument), more than two positional arguments or ``*args``/``**kwargs``.

When: MoE models of upstream 0.31+ (K2-Horizon, ...) at a pin that has a ``GateLinear`` lacking
an argument upstream's takes, found by comparing the pin's constructor with the shim's (upstream's
signature). A pin without ``GateLinear`` (0.13) gets P18's instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_flmigrate.index.records import VAR_KEYWORD

from .p18_gate_linear import API
from .translation import ShimRedirect, Translation, Uses, accepted, shim_call_refusal, shim_function

if TYPE_CHECKING:
    from pytest_flmigrate.index.resolve import Resolver

ID = "P33"
NAME = "gate-linear-signature"
PINNED = ">=0"  # keyed by the trees: pin_gap, and step 4 checks the shim against the pin

SHIM = "gate_linear"
"""``pytest_flmigrate/autofix/shims/gate_linear.py``, written as ``vllm_fl/compat/gate_linear.py``."""

TRANSLATION = Translation(API, Uses, accepted, shim_call_refusal(SHIM, API.name, "the pin's GateLinear"))
relevant, refusal, rewritten_imports = TRANSLATION.relevant, TRANSLATION.refusal, TRANSLATION.rewritten_imports


def pin_gap(pinned: Resolver) -> str | None:
    """None when the pin's ``GateLinear`` lacks an argument of upstream's (the shim's signature)."""
    found = next((symbol for module in API.modules if (symbol := pinned.resolve(module, API.name))), None)
    if found is None or found.kind != "class":
        return f"the pin has no {API.name} class to give upstream's signature (P18 translates it)"
    constructor, _ = pinned.constructor(found.module, found.name)
    if constructor is None or constructor.function is None:
        return f"the pin's {API.name} has no constructor to compare"
    params = constructor.function.params
    if any(param.kind == VAR_KEYWORD for param in params) or shim_function(SHIM, API.name).keywords <= {
        param.name for param in params
    }:
        return f"the pin's {API.name} takes upstream's arguments"
    return None


class Transformer(ShimRedirect):
    translation = TRANSLATION
    shim = SHIM
