"""P18: ``GateLinear`` (the MoE router's linear layer) comes from the shim on the pin's ``ReplicatedLinear``.

What: the import of ``GateLinear`` points at ``vllm_fl.compat.moe_runner``, which step 4 writes
beside the migrated files (``pytest_flmigrate/autofix/shims/moe_runner.py``); calls, annotations,
``isinstance`` and subclasses stay as upstream spells them::

    from vllm.model_executor.layers.fused_moe import FusedMoE, GateLinear
    self.gate = GateLinear(config.hidden_size, config.num_experts, out_dtype=torch.float32, prefix=f"{prefix}.gate")
    # becomes
    from vllm.model_executor.layers.fused_moe import FusedMoE
    from vllm_fl.compat.moe_runner import GateLinear
    self.gate = GateLinear(config.hidden_size, config.num_experts, out_dtype=torch.float32, prefix=f"{prefix}.gate")

One count per import statement.

Why: upstream's ``GateLinear`` is a ``ReplicatedLinear`` subclass that picks a specialised
router GEMM on Hopper/Blackwell/gfx950 GPUs and otherwise runs its portable "tier 6": the input
cast to the weight's dtype and the logits cast to ``out_dtype`` when one is set, around
``ReplicatedLinear.forward``. Every tier computes the same product (``force_fp32_compute``: in
float32 weights), so the shim's ``GateLinear`` is the pin's ``ReplicatedLinear`` with upstream's
signature (``bias=False`` by default, ``out_dtype`` fourth) and that tier: the same weights,
names, loader and logits. What it lacks does not exist at the pin: the GEMM tiers (kernels 0.13
lacks) and the ``PluggableLayer`` registration under ``gate_linear`` (an out-of-tree hook).

When: MoE models of upstream 0.31+ (Cohere2-MoE, EXAONE-MoE, MiMo-V2, Step 3.5, ...), at any
pin that lacks ``GateLinear`` and whose ``ReplicatedLinear`` takes the shim's calls.
"""

from __future__ import annotations

from .translation import Api, ShimRedirect, Translation, Uses, accepted, api_gap

ID = "P18"
NAME = "gate-linear"
PINNED = ">=0"  # keyed by the trees: pin_gap

API = Api(
    "GateLinear", ("vllm.model_executor.layers.fused_moe", "vllm.model_executor.layers.fused_moe.router.gate_linear")
)
SHIM = "moe_runner"
"""``pytest_flmigrate/autofix/shims/moe_runner.py``, written as ``vllm_fl/compat/moe_runner.py``."""

TRANSLATION = Translation(API, Uses, accepted, accepted)
"""The shim's ``GateLinear`` takes upstream's signature and members: no use is refused."""
relevant, refusal, rewritten_imports = TRANSLATION.relevant, TRANSLATION.refusal, TRANSLATION.rewritten_imports
pin_gap = api_gap(TRANSLATION.apis)


class Transformer(ShimRedirect):
    translation = TRANSLATION
    shim = SHIM
