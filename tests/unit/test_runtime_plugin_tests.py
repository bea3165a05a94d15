"""Steps 1/7/8's runner: the plugin's tests by another interpreter, outcomes from real JUnit XML."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.steps import plugin_tests

TESTS = """
import pytest

def test_passes():
    assert True

def test_fails():
    assert 1 == 2, "broken on purpose"

@pytest.mark.skip(reason="no weights")
def test_skipped():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("fixture error")

def test_errors(broken):
    pass

class TestGroup:
    @pytest.mark.parametrize("n", [1, 2])
    def test_param(self, n):
        assert n == 1
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    folder = tmp_path / "plugin" / "tests" / "unit_tests"
    folder.mkdir(parents=True)
    (folder / "test_things.py").write_text(TESTS)
    return tmp_path / "plugin"


def test_counts_and_failing_ids_from_junit(checkout, tmp_path):
    run = plugin_tests.run_folder(
        sys.executable, checkout, "tests/unit_tests", logs=tmp_path / "logs", label="unit-baseline"
    )
    assert run.counts() == {"passed": 2, "failed": 2, "error": 1, "skipped": 1}
    assert run.failing == [
        "tests/unit_tests/test_things.py::TestGroup::test_param[2]",
        "tests/unit_tests/test_things.py::test_errors",
        "tests/unit_tests/test_things.py::test_fails",
    ]
    assert run.exit_code == 1 and Path(run.junit).exists() and "test_fails" in Path(run.log).read_text()
    assert run.line() == "2 passed, 2 failed, 1 skipped, 1 errors"
    saved = tmp_path / "logs" / "baseline.json"
    run.save(saved)
    assert plugin_tests.TestRun.load(saved) == run


def test_a_model_in_tool_flmigrate_does_not_replace_the_plugins_own_tests(checkout, tmp_path):
    # this interpreter has pytest-flmigrate installed: plain pytest in this checkout would migrate
    (checkout / "pyproject.toml").write_text('[tool.flmigrate]\nmodel = ["tiny"]\n')
    run = plugin_tests.run_folder(
        sys.executable, checkout, "tests/unit_tests", logs=tmp_path / "logs", label="unit-baseline"
    )
    assert run.counts() == {"passed": 2, "failed": 2, "error": 1, "skipped": 1}


def test_new_failures_versus_baseline(checkout, tmp_path):
    before = plugin_tests.run_folder(sys.executable, checkout, "tests/unit_tests", logs=tmp_path, label="before")
    (checkout / "tests" / "unit_tests" / "test_things.py").write_text(
        TESTS.replace('assert 1 == 2, "broken on purpose"', "assert True").replace(
            "def test_passes():\n    assert True", "def test_passes():\n    assert False"
        )
    )
    after = plugin_tests.run_folder(sys.executable, checkout, "tests/unit_tests", logs=tmp_path, label="after")
    compared = plugin_tests.compare(before, after)
    assert compared.new == ("tests/unit_tests/test_things.py::test_passes",)
    assert compared.fixed == ("tests/unit_tests/test_things.py::test_fails",)
    assert "tests/unit_tests/test_things.py::test_errors" in compared.preexisting


def test_checkout_folder_does_not_leak_onto_sys_path(tmp_path):
    checkout = tmp_path / "plugin"
    (checkout / "vllm_fl").mkdir(parents=True)
    (checkout / "vllm_fl" / "__init__.py").write_text("")
    (checkout / "tests" / "unit_tests").mkdir(parents=True)
    (checkout / "tests" / "unit_tests" / "test_import.py").write_text("def test_import():\n    import vllm_fl\n")
    run = plugin_tests.run_folder(sys.executable, checkout, "tests/unit_tests", logs=tmp_path, label="x")
    assert run.failing == ["tests/unit_tests/test_import.py::test_import"]  # not installed, so not importable


def test_empty_folder_is_zero_tests(tmp_path):
    (tmp_path / "p" / "tests" / "unit_tests").mkdir(parents=True)
    run = plugin_tests.run_folder(sys.executable, tmp_path / "p", "tests/unit_tests", logs=tmp_path, label="x")
    assert run.exit_code == 5 and run.cases == ()


def test_interpreter_without_pytest_gives_the_log_tail(tmp_path, checkout):
    import subprocess

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    with pytest.raises(
        FlmigrateError, match=r"pytest tests/unit_tests in the pinned env exited 1 without test results"
    ) as caught:
        plugin_tests.run_folder(
            str(tmp_path / "bare" / "bin" / "python"), checkout, "tests/unit_tests", logs=tmp_path, label="x"
        )
    assert "No module named 'pytest'" in str(caught.value)


def test_a_finished_run_is_kept_and_replayed_until_a_file_changes(checkout, tmp_path):
    env = {"vllm": "/envs/p/vllm", "vllm_version": "0.13.0", "python": "3.11.7"}
    memo = plugin_tests.memo_path(checkout, env, "tests/unit_tests", cache=tmp_path / "cache")
    first = plugin_tests.run_folder(
        sys.executable, checkout, "tests/unit_tests", logs=tmp_path / "a", label="unit-baseline", memo=memo
    )
    assert memo.exists() and not first.replayed
    (checkout / "tests" / "unit_tests" / "test_things.py").write_text("this is no python")  # not run again
    again = plugin_tests.run_folder(
        sys.executable, checkout, "tests/unit_tests", logs=tmp_path / "b", label="unit-baseline", memo=memo
    )
    assert again.replayed and again.cases == first.cases and again.exit_code == first.exit_code
    assert Path(again.junit).read_text() == Path(first.junit).read_text()
    assert Path(again.log).read_text() == Path(first.log).read_text() and again.as_dict()["replayed"] is True
    assert plugin_tests.memo_path(checkout, env, "tests/unit_tests", cache=tmp_path / "cache") != memo
    assert plugin_tests.memo_path(checkout, {**env, "vllm_version": "0.24.0"}, "tests/unit_tests") != memo


def test_a_run_without_results_is_not_kept(tmp_path, checkout):
    memo = tmp_path / "cache" / "plugin-tests" / "k.json"
    no_pytest = tmp_path / "python"
    no_pytest.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(4)\n")
    no_pytest.chmod(0o755)
    with pytest.raises(FlmigrateError):
        plugin_tests.run_folder(
            str(no_pytest), checkout, "tests/unit_tests", logs=tmp_path / "logs", label="x", memo=memo
        )
    assert not memo.exists()
