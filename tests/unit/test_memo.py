"""Memoized steps: one run per instance, errors kept, and results read as attributes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_flmigrate import report
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.memo import memoized
from pytest_flmigrate.run import ModelRun, Workspace
from pytest_flmigrate.settings import resolve


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    @memoized
    def value(self) -> int:
        self.calls += 1
        return 42

    @memoized
    def broken(self) -> int:
        self.calls += 1
        raise FlmigrateError("step failed")


def test_a_step_runs_once_and_its_result_is_read_without_running_it():
    counter = Counter()
    assert counter.value.result is None and counter.calls == 0  # reading never computes
    assert counter.value() == 42 and counter.value() == 42
    assert counter.calls == 1 and counter.value.result == 42


def test_a_failed_step_raises_its_error_again_and_has_no_result():
    counter = Counter()
    for _ in range(2):
        with pytest.raises(FlmigrateError, match="step failed"):
            counter.broken()
    assert counter.calls == 1 and counter.broken.result is None


def test_results_are_per_instance():
    first, second = Counter(), Counter()
    first.value()
    assert second.value.result is None


def session(plugin_tree: Path) -> ModelRun:
    settings = resolve({"model": ["mimo"], "pinned": str(plugin_tree)}, plugin_tree)
    return Workspace(settings).run_for("mimo")


def test_summary_reads_every_step_it_reports_by_attribute(plugin_tree):
    """A renamed step is an AttributeError here, not a summary.json field silently left empty."""
    run = session(plugin_tree)
    data = report.summary(run, {})
    assert data["placeholders"] == {} and data["files"] == [] and data["tests"] is None
    assert run.started_runtime is None
    run.runtime  # a runtime step asked for the runtime half: its steps are read too
    assert report.summary(run, {})["import_smoke"] is None
    assert not any(name.startswith("_memo_") for name in vars(run)), "reporting computed a step"
