"""--tiny on real vLLM for a speculative-decoding draft: ``qwen3_eagle3`` (EAGLE-3, new in 0.32).

Steps 2-6 migrate it into a copy of the example plugin; with ``--tiny`` its tiny model is a pair
(the reference tiny Qwen2 target and the tiny draft, its weights under the checkpoint names
upstream's draft class loads, built for that target); the control serves the target alone. The
pinned vLLM 0.13.0 cannot speculate on CPU (its CPU model runner asserts ``spec decode is not
supported.``), so steps 9-11 skip with that one line, a platform fact. Skips, naming the command,
when the CPU envs are missing.
"""

from __future__ import annotations

import pytest

from pytest_flmigrate.servers.ports import free_port
from tests.runtime.suite_run import flmigrate, plugin_tree

DRAFT = "qwen3_eagle3"
PIN_FACT = "vLLM 0.13.0's CPU model runner does not support speculative decoding: the draft Eagle3Qwen3ForCausalLM"


@pytest.fixture(scope="module")
def draft(pinned_python, upstream_python, tmp_path_factory):
    tree, python = plugin_tree(tmp_path_factory.mktemp("tiny-draft"), pinned_python)
    static = flmigrate(tree, python, "-k", "step02 or step03 or step04 or step05", model=DRAFT)
    tiny = flmigrate(
        tree,
        python,
        "--tiny",
        "--gt-python",
        str(upstream_python),
        "-k",
        "step09 or step10 or e2e",
        model=DRAFT,
        port=free_port(),
    )
    return static, tiny


def test_a_draft_is_synthesized_as_a_pair_and_the_pin_says_it_cannot_speculate(draft):
    static, run = draft
    assert static.outcomes("2", "3", "4", "5") == dict.fromkeys(("2", "3", "4", "5"), "passed"), static.output[-4000:]
    assert any("speculative-decoding draft (eagle3" in line for line in static.summary["pattern"]["evidence"])
    tiny = run.summary["tiny"]
    assert (tiny["arch"], tiny["weights"]) == ("Eagle3Qwen3ForCausalLM", "synthesized"), tiny
    assert tiny["draft"]["method"] == "eagle3" and tiny["draft"]["target"] == "Qwen2ForCausalLM"
    assert run.summary["control"] == {"served": True, "reason": ""}
    assert run.outcomes("9", "10", "11") == dict.fromkeys(("9", "10", "11"), "skipped"), run.output[-6000:]
    assert PIN_FACT in run.output
