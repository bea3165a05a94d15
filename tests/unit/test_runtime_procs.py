"""Process groups: a logged run leaves nothing behind, a timeout stops the group with the log's tail."""

from __future__ import annotations

import sys

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers import procs


def test_run_logged_stops_children_left_behind(tmp_path):
    log = tmp_path / "run.log"
    script = "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); print('child', p.pid)"
    finished = procs.run_logged([sys.executable, "-c", script], env={}, cwd=tmp_path, log=log, timeout=60, what="x")
    assert finished.returncode == 0
    child = int(log.read_text().split("child ")[1])
    assert not procs.running(child)
    assert log.read_text().startswith("$ ")


def test_timeout_stops_the_group_and_names_the_log(tmp_path):
    log = tmp_path / "slow.log"
    script = "print('working', flush=True); import time; time.sleep(600)"
    with pytest.raises(FlmigrateError) as caught:
        procs.run_logged(
            [sys.executable, "-c", script], env={}, cwd=tmp_path, log=log, timeout=1, what="the slow thing"
        )
    assert str(caught.value).splitlines()[0] == f"the slow thing did not finish within 1 s and was stopped (log: {log})"
    assert "working" in str(caught.value)


def test_missing_executable_is_one_line(tmp_path):
    with pytest.raises(FlmigrateError, match=r"cannot run /nonexistent/python: No such file or directory"):
        procs.run_logged(["/nonexistent/python"], env={}, cwd=tmp_path, log=tmp_path / "x.log", timeout=5, what="x")


def test_scratch_folders_are_short_and_removable():
    scratch = procs.scratch_dir("serve-8122")
    try:
        assert str(scratch).startswith("/tmp/flm-serve-8122-") and len(str(scratch)) < 40
    finally:
        procs.remove_scratch(scratch)
    assert not scratch.exists()


def test_remove_scratch_leaves_other_folders_alone(tmp_path):
    procs.remove_scratch(tmp_path)
    assert tmp_path.is_dir()
