"""P26: ``SwigluStepAndMul`` and ``SiluAndMulWithClamp`` (clamped SwiGLU activations) come from a shim.

What: the imports of the two activations point at ``vllm_fl.compat.clamped_swiglu``, which
step 4 writes beside the migrated files (``pytest_flmigrate/autofix/shims/clamped_swiglu.py``);
the code using them stays as upstream spells it::

    from vllm.model_executor.layers.activation import SiluAndMul, SwigluStepAndMul
    self.act_fn = SwigluStepAndMul(limit=swiglu_limit) if swiglu_limit else SiluAndMul()
    # becomes
    from vllm.model_executor.layers.activation import SiluAndMul
    from vllm_fl.compat.clamped_swiglu import SwigluStepAndMul

One count per import statement.

Why: upstream 0.31+ added SwiGLU variants that clamp (the shared experts and MLPs of Step 3.5,
Bailing-MoE v3, EXAONE 4, GLM-5-Next): ``silu(gate).clamp(max=limit) * up.clamp(-limit, limit)``
and ``g * sigmoid(alpha * g) * (up + beta)`` with ``g = gate.clamp(max=limit)``. The pin has
neither, and copying upstream's classes is refused (their CUDA paths call kernels the pin does
not register). Both are elementwise: the shim's classes compute upstream's ``forward_native``
on every platform (upstream's CPU path is that function itself; its kernels compute the same).

When: models of upstream 0.31+ using a clamped SwiGLU, at any pin that lacks one of them.
"""

from __future__ import annotations

from .translation import Api, ShimRedirect, Translation, Translations, Uses, accepted, api_gap

ID = "P26"
NAME = "clamped-swiglu"
PINNED = ">=0"  # keyed by the trees: pin_gap

ACTIVATION = "vllm.model_executor.layers.activation"
APIS = (Api("SwigluStepAndMul", (ACTIVATION,)), Api("SiluAndMulWithClamp", (ACTIVATION,)))
SHIM = "clamped_swiglu"
"""``pytest_flmigrate/autofix/shims/clamped_swiglu.py``, written as ``vllm_fl/compat/clamped_swiglu.py``."""

TRANSLATION = Translations(tuple(Translation(api, Uses, accepted, accepted) for api in APIS))
"""The shim's classes take upstream's signatures: no use is refused."""
relevant, refusal, rewritten_imports = TRANSLATION.relevant, TRANSLATION.refusal, TRANSLATION.rewritten_imports
pin_gap = api_gap(TRANSLATION.apis)


class Transformer(ShimRedirect):
    translation = TRANSLATION
    shim = SHIM
