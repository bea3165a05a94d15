"""Progress per model and step: a line once a slow step of a model is over, printed by the
process that owns the terminal (the xdist controller too, with its workers' lines)."""

from __future__ import annotations

import pytest

from pytest_flmigrate import progress

#: Makes every step slow and says one line from inside a step (a worker's, under -n).
EVERY_STEP_SLOW = """
from pytest_flmigrate import progress

progress.SLOW_STEP_SECONDS = 0.0

class InsideStep3:  # a plugin, not a conftest hook: the suite's tests are outside this folder
    def pytest_runtest_setup(self, item):
        if "test_step03" in item.nodeid:
            progress.report("inside step 3")

def pytest_configure(config):
    config.pluginmanager.register(InsideStep3())
"""


def test_a_slow_step_gets_one_line_when_the_model_moves_on(monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(progress, "SLOW_STEP_SECONDS", 2.0)
    restore = progress.use(lines.append)
    try:
        times = progress.StepTimes()
        times.add("a", 2, 1.5)
        times.add("b", 2, 0.5)
        times.add("a", 2, 1.0)  # a's step 2: 2.5 s, not over yet
        assert lines == []
        times.add("a", 4, 0.1)
        times.add("b", 4, 0.1)  # b's step 2 was fast: no line
        times.add("a", 4, 3.0)
        times.finish()
    finally:
        restore()
    assert lines == ["a: step 2 (upstream) done in 2 s", "a: step 4 (migrate) done in 3 s"]


def run_args(trees) -> list[str]:
    upstream, pinned = trees
    return ["--model", "tiny", "--upstream", str(upstream), "--pinned", str(pinned), "-m", "not runtime"]


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_steps_and_worker_lines_reach_the_terminal(pytester, plugin_tree, trees, workers):
    pytester.makeconftest(EVERY_STEP_SLOW)
    result = pytester.runpytest_subprocess(
        "--plugin-dir", str(plugin_tree), "-p", "no:cacheprovider", *run_args(trees), *workers
    )
    output = result.stdout.lines
    steps = [line for line in output if line.startswith("flmigrate: tiny: step ")]
    assert [line.split(" (")[0] for line in steps] == [f"flmigrate: tiny: step {n}" for n in (2, 3, 4, 5, 6, 11)]
    assert "flmigrate: inside step 3" in output


def test_quiet_under_q(pytester, plugin_tree, trees):
    pytester.makeconftest(EVERY_STEP_SLOW)
    result = pytester.runpytest_subprocess(
        "--plugin-dir", str(plugin_tree), "-p", "no:cacheprovider", "-q", *run_args(trees)
    )
    assert not [line for line in result.stdout.lines if line.startswith("flmigrate:")]
