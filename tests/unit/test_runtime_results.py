"""The runtime part of summary.json (a step that did not run this session keeps its last figures) and
of report.md."""

from __future__ import annotations

from types import SimpleNamespace

from pytest_flmigrate.report import markdown
from pytest_flmigrate.report import runtime as runtime_report


def run_without_runtime(steps: dict) -> SimpleNamespace:
    return SimpleNamespace(steps=steps, started_runtime=None)  # no runtime step ran


def test_nothing_before_and_nothing_now():
    fields = runtime_report.summary_fields(run_without_runtime({}), {})
    assert fields == {
        "tests": None,
        "import_smoke": None,
        "gpu": None,
        "benchmark": None,
        "server": None,
        "tiny": None,
        "control": None,
        "phases": None,
        "draft": None,
        "runtime_env": None,
        "notes": [],
    }


def test_parts_of_steps_not_run_are_carried_over_marked():
    earlier = {
        "tests": {"baseline": {"passed": 2}, "regression": {"passed": 2}},
        "benchmark": {"requests_per_second": 0.1},
        "server": {"url": "http://127.0.0.1:1"},
    }
    fields = runtime_report.summary_fields(run_without_runtime({10: object()}), earlier)  # only step 10 ran
    assert fields["benchmark"] == {"requests_per_second": 0.1, "earlier_run": True}
    assert fields["tests"] == {
        "baseline": {"passed": 2, "earlier_run": True},
        "regression": {"passed": 2, "earlier_run": True},
    }
    assert fields["server"] is None  # step 10 ran (and failed) now: its old server is not shown


def test_report_sections_of_a_full_run():
    data = {
        "steps": {"9": {"outcome": "passed"}, "10": {"outcome": "passed"}},
        "tests": {
            "baseline": {"passed": 2, "failed": 1, "skipped": 0, "error": 0, "failing": ["t::a"]},
            "regression": {
                "passed": 1,
                "failed": 2,
                "skipped": 0,
                "error": 0,
                "failing": ["t::a", "t::b"],
                "new_failures": ["t::b"],
                "preexisting": ["t::a"],
                "fixed": [],
            },
            "functional": {"passed": 0, "failed": 1, "skipped": 0, "error": 0, "failing": ["f::gpu"]},
        },
        "benchmark": {"requests_per_second": 0.09, "tokens_per_second": 24.2, "seconds": 21.2},
        "server": {"url": "http://127.0.0.1:8122", "reused": True, "evidence": {"resolved": ["MiMoForCausalLM"]}},
        "gpu": {"available": False, "gpus": []},
    }
    text = "\n".join(markdown.plugin_tests(data) + markdown.verification(data))
    assert "- Unit (baseline): 2 passed, 1 failed, 0 skipped" in text
    assert "- Unit (regression): 1 passed, 2 failed, 0 skipped — regressions: t::b" in text
    assert "- Functional: 0 passed, 1 failed, 0 skipped — failing (reported, not blocking): f::gpu" in text
    assert "- Pre-existing unit failures: t::a" in text
    assert "- Benchmark: ✅ (0.09 requests/s, 24.2 tokens/s, 21.2 s)" in text
    assert "- Serve: ✅ http://127.0.0.1:8122 (reused; architecture MiMoForCausalLM)" in text
