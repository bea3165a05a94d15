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
