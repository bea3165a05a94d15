"""The suite's own overhead: collecting plans nothing once a review ran (step 6's cases come
from the cases the last review saved, review_cases.py, so ``-k e2e`` does not pay for step
6's planning), and a long first run says what it is doing, line by line, quiet under -q."""

from __future__ import annotations

import json
import shutil

import pytest

from pytest_flmigrate.index import sources
from pytest_flmigrate.run import ModelRun
from pytest_flmigrate.steps import review_cases
from pytest_flmigrate.steps.review_cases import Case
from tests.unit.test_suite_synthetic import migrate_ok, run_args


def test_a_selection_without_step_6_plans_nothing_after_a_review(flmigrate, plugin_tree, trees, monkeypatch):
    migrate_ok(flmigrate, trees)
    saved = review_cases.load(plugin_tree / "reports" / "tiny")
    assert saved and Case("bare-except", "vllm_fl/models/tiny.py") in saved

    def no_planning(self):
        raise AssertionError("step 6's planning ran")

    monkeypatch.setattr(ModelRun, "review_context", no_planning)
    result = flmigrate(*run_args(trees, "--model", "tiny", "-k", "e2e"))
    outcomes = result.parseoutcomes()
    assert result.ret == 0 and outcomes["deselected"] >= len(saved), result.stdout.str()
    assert "step 6's planning ran" not in result.stdout.str()


def test_findings_of_cases_not_collected_are_reported_by_the_last_case(flmigrate, plugin_tree, trees):
    migrate_ok(flmigrate, trees)
    reports = plugin_tree / "reports" / "tiny"
    kept = [case for case in review_cases.load(reports) if case != Case("bare-except", "vllm_fl/models/tiny.py")]
    review_cases.save(reports, kept)  # as if saved before the file changed
    model = plugin_tree / "vllm_fl/models/tiny.py"
    model.write_text(model.read_text() + "\ntry:\n    pass\nexcept:\n    pass\n")
    result = flmigrate(*run_args(trees, "--model", "tiny", "-k", "review"))
    output = result.stdout.str()
    assert result.ret == 1 and result.parseoutcomes()["failed"] == 1, output
    last = kept[-1]
    assert f"test_review[tiny-{last.check}-{last.file}]" in output
    assert "Findings no test was collected for:" in output and "[bare-except]" in output
    rerun = flmigrate(*run_args(trees, "--model", "tiny", "-k", "bare-except and tiny.py"))
    assert rerun.parseoutcomes()["failed"] == 1  # the next collection has the case again


@pytest.mark.parametrize(
    "content",
    ["{", '{"format": 0, "cases": [["a", "b"]]}', '{"format": 1, "cases": []}', '{"format": 1, "cases": [1]}'],
)
def test_unreadable_or_foreign_saved_cases_mean_planning_again(tmp_path, content):
    (tmp_path / review_cases.FILE_NAME).write_text(content)
    assert review_cases.load(tmp_path) is None


def test_saved_cases_round_trip(tmp_path):
    cases = [Case("bare-except", "vllm_fl/models/x.py"), Case("registration", "vllm_fl/__init__.py")]
    review_cases.save(tmp_path, cases)
    assert review_cases.load(tmp_path) == cases
    assert json.loads((tmp_path / review_cases.FILE_NAME).read_text())["format"] == review_cases.FORMAT


def test_a_first_run_says_what_it_indexes_and_minus_q_keeps_it_quiet(pytester, plugin_tree, trees):
    args = (
        "--plugin-dir",
        str(plugin_tree),
        "-p",
        "no:cacheprovider",
        "-m",
        "not runtime",
        "-k",
        "upstream",
        "--model",
        "tiny",
        *run_args(trees),
    )
    first = pytester.runpytest_inprocess(*args).stdout.lines
    indexing = [line for line in first if line.startswith("flmigrate: index")]
    assert "flmigrate: indexing vllm 9.1.0: 20 files on 1 core(s), once per tree" in indexing, first
    assert any(line.startswith("flmigrate: indexed vllm 9.1.0: 20 files in ") for line in indexing)
    for line in first:
        assert "\r" not in line
    shutil.rmtree(sources.cache_dir() / "index")
    quiet = pytester.runpytest_inprocess(*args, "-q").stdout.lines
    assert not [line for line in quiet if line.startswith("flmigrate: index")], quiet
