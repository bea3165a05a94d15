"""P32: ``FusedMoEFactory(...)`` comes from a shim calling the pin's ``FusedMoE``, the same factory under its former name.

What: in a file whose every ``FusedMoEFactory`` call has a pinned spelling, the imports of
``FusedMoEFactory`` and the fused-shared-experts switches point at ``vllm_fl.compat.moe_factory``,
which step 4 writes beside the migrated files (``pytest_flmigrate/autofix/shims/moe_factory.py``);
the calls and the layers' calls stay as upstream spells them::

    from vllm.model_executor.layers.fused_moe import FusedMoEFactory, GateLinear
    self.experts = FusedMoEFactory(shared_experts=self.shared_experts, gate=self.gate, num_experts=n,
                                   top_k=k, hidden_size=h, intermediate_size=i, prefix=...)
    # becomes
    from vllm.model_executor.layers.fused_moe import GateLinear
    from vllm_fl.compat.moe_factory import FusedMoEFactory

One count per import statement.

Why: before upstream renamed it ``FusedMoEFactory``, ``FusedMoE`` was already the factory
function building a router, ``RoutedExperts`` and a ``MoERunner`` from the same arguments; a pin
of that time has the runner, its routers and ``GateLinear`` but not the name. The shim's
factory passes the arguments both spell to the pin's ``FusedMoE`` as they are, so the layers are
the pin's own (parameters under ``experts.routed_experts.``, as upstream's loaders name them).
The arguments upstream added are taken where their value asks for what the pin does anyway (its
``ACCEPTED``: ``reduce_results=True``, no shared experts fused into the routed GEMM, no padding
or SiTU or vision-language routing options, the default checkpoint names); the fused-shared-experts
switches, which such a pin lacks, resolve the fusion off (the shim's own).

Refused at step 4, with the line (the migration writes nothing): a call passing an argument
neither the shim nor the pin's factory takes, a literal value outside the shim's ``ACCEPTED``
(a value known only at run time raises there, naming the argument), more than four positional
arguments, ``*args``/``**kwargs``, ``FusedMoEFactory`` used other than called, or a layer called
with more than ``hidden_states``, ``router_logits`` and ``input_ids`` (upstream's
``shared_experts_input`` has no pinned spelling).

When: MoE models of upstream 0.31+ at a pin that lacks ``FusedMoEFactory`` and whose ``FusedMoE``
is the factory function the shim calls (vLLM 0.24): where it is a class instead (0.13), the
shim's import of ``MoERunner`` and its call fail there and P19 translates the file.
"""

from __future__ import annotations

import libcst as cst

from .p19_fused_moe_factory import API, FUSED_SHARED, TARGET, FactoryLayers, layer_calls_refusal
from .translation import ShimRedirect, Translation, Translations, Uses, accepted, api_gap, shim_call_refusal

ID = "P32"
NAME = "fused-moe-factory-function"
PINNED = ">=0"  # keyed by the trees: pin_gap, and step 4 checks the shim's calls against the pin

SHIM = "moe_factory"
"""``pytest_flmigrate/autofix/shims/moe_factory.py``, written as ``vllm_fl/compat/moe_factory.py``."""
FORWARD = ("hidden_states", "router_logits", "input_ids")
"""The parameters of the pin's ``MoERunner.forward``."""


def _file_refusal(uses: FactoryLayers) -> tuple[cst.CSTNode, str] | None:
    """The factory used other than called, then the layers' own calls."""
    if uses.others:
        return uses.others[0], "used other than called"
    return layer_calls_refusal(uses, FORWARD)


TRANSLATION = Translations(
    (
        Translation(API, FactoryLayers, _file_refusal, shim_call_refusal(SHIM, API.name, TARGET)),
        *(Translation(api, Uses, accepted, accepted) for api in FUSED_SHARED),
    )
)
relevant, refusal, rewritten_imports = TRANSLATION.relevant, TRANSLATION.refusal, TRANSLATION.rewritten_imports
pin_gap = api_gap(TRANSLATION.apis)


class Transformer(ShimRedirect):
    translation = TRANSLATION
    shim = SHIM
