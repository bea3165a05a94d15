"""Process groups: a logged run leaves nothing behind, a timeout stops the group with the log's tail."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers import procs
from tests.e2e.remote_helpers import wait_until


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


def test_the_watchdog_exits_as_the_command_did(tmp_path):
    for script, code in (("raise SystemExit(3)", 3), ("import os; os.kill(os.getpid(), 9)", -9), ("pass", 0)):
        proc = procs.start_group([sys.executable, "-c", script], env=os.environ, cwd=tmp_path, log=tmp_path / "x.log")
        assert proc.wait(timeout=60) == code, script


def test_a_command_that_cannot_be_executed_is_one_line(tmp_path):
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(FlmigrateError, match=rf"^cannot run {script}: Permission denied$"):
        procs.start_group([str(script)], env=os.environ, cwd=tmp_path, log=tmp_path / "x.log")


#: A run that starts a group (the command ignores SIGTERM and has a child), prints its id, and waits to be killed.
STARTER = """
import os, sys
from pathlib import Path
from pytest_flmigrate.servers import procs
procs.WATCHDOG_GRACE = 1.0
command = [sys.executable, "-c", "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
           "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); print('up', flush=True); time.sleep(600)"]
proc = procs.start_group(command, env=os.environ, cwd=Path.cwd(), log=Path(sys.argv[1]), outlive=sys.argv[2] == "outlive")
print(proc.pid, flush=True)
import time; time.sleep(600)
"""


def started_then_killed(tmp_path: Path, mode: str) -> tuple[int, Path, int]:
    """(the group, its log, the starter's pid) once the starter was SIGKILLed with the group up."""
    log = tmp_path / f"{mode}.log"
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(log), mode], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    group = int(starter.stdout.readline())
    try:
        assert wait_until(lambda: "up" in log.read_text() and len(procs.group_members(group)) >= 2, 30), log.read_text()
    except BaseException:
        os.killpg(group, signal.SIGKILL)
        raise
    finally:
        starter.kill()
        starter.wait(timeout=30)
    return group, log, starter.pid


def test_a_group_ends_with_the_run_that_started_it_even_by_sigkill(tmp_path):
    group, log, starter = started_then_killed(tmp_path, "watched")
    gone = wait_until(lambda: not procs.group_members(group), 30)
    if not gone:
        os.killpg(group, signal.SIGKILL)
    assert gone, "the group outlived the run that started it"
    assert f"flmigrate watchdog: the run that started this (pid {starter}) is gone" in log.read_text()


def test_a_kept_group_outlives_the_run(tmp_path):
    group, _, _ = started_then_killed(tmp_path, "outlive")
    try:
        time.sleep(2)
        assert procs.group_members(group)
    finally:
        assert procs.stop_group(group, grace=1) == "killed"  # the command ignores SIGTERM
