"""Ending a migration run from outside: a Ctrl-C in pytest's own cleanup (its garbage-collector
passes, after the summary line) ends it with one line and exit status 130, never a traceback; a
SIGTERM mid-run ends it as a Ctrl-C does, stopping the servers it started; a SIGKILL mid-serve,
which no cleanup sees, leaves no process of the server's group either (its watchdog ends it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pytest_flmigrate.servers import procs
from pytest_flmigrate.servers.ports import free_port

FAKE_VLLM = Path(__file__).resolve().parents[1] / "fixtures" / "fake_vllm_python.py"

INTERRUPTER = textwrap.dedent("""
    import os, signal, time
    import pytest

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(config):
        os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C while pytest cleans up
        time.sleep(30)
""")


def step_2_command(plugin: str, source: str, plugin_tree: Path, trees, tmp_path: Path, **env: str):
    """Step 2 of the synthetic model as a pytest command loading ``source`` as plugin ``plugin``:
    (command, environment)."""
    (tmp_path / f"{plugin}.py").write_text(source, encoding="utf-8")
    upstream_dir, pinned_dir = trees
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--model",
        "tiny",
        "--upstream",
        str(upstream_dir),
        "--pinned",
        str(pinned_dir),
        "--plugin-dir",
        str(plugin_tree),
        "-p",
        "no:cacheprovider",
        "-m",
        "not runtime",
        "-k",
        "upstream",
        "-p",
        plugin,
    ]
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    return command, {**os.environ, "PYTHONPATH": path, **env}


def step_2_with_plugin(plugin: str, source: str, plugin_tree: Path, trees, tmp_path: Path, **env: str):
    """Step 2 of the synthetic model in a pytest subprocess loading ``source`` as plugin ``plugin``."""
    command, environment = step_2_command(plugin, source, plugin_tree, trees, tmp_path, **env)
    return subprocess.run(command, cwd=plugin_tree, env=environment, capture_output=True, text=True, timeout=120)


def test_ctrl_c_during_pytests_cleanup_prints_one_line(plugin_tree: Path, trees, tmp_path: Path):
    result = step_2_with_plugin("interrupter", INTERRUPTER, plugin_tree, trees, tmp_path)
    output = result.stdout + result.stderr
    assert " 3 passed" in result.stdout, output  # the session ran and ended
    assert result.returncode == 130, output
    assert (
        "flmigrate: interrupted during pytest's cleanup; the session had ended and its reports are written"
        in result.stderr
    )
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert (plugin_tree / "reports" / "tiny" / "summary.json").is_file()


TERMINATOR = textwrap.dedent("""
    import os, signal, sys
    import pytest
    from pathlib import Path
    from pytest_flmigrate.servers import procs
    from pytest_flmigrate.steps.serve import Server

    @pytest.fixture(autouse=True)
    def a_server_then_sigterm(server_pool):
        # a stand-in for vllm serve, started as the pool starts one: its own process group
        pid_file = Path(os.environ["SERVER_PID_FILE"])
        command = [sys.executable, "-c", "import time; time.sleep(600)"]
        log = pid_file.with_suffix(".log")
        proc = procs.start_group(command, env=os.environ, cwd=pid_file.parent, log=log)
        pid_file.write_text(str(proc.pid))
        server = Server("http://127.0.0.1:1", 1, proc.pid, command, "f", log, None, proc=proc)
        server_pool.current[1] = server
        server_pool.started[1] = (server, pid_file.parent)
        os.kill(os.getpid(), signal.SIGTERM)  # the run is cancelled (a CI job, kill, a timeout)
        yield
""")


def test_a_sigterm_stops_the_servers_the_run_started(plugin_tree: Path, trees, tmp_path: Path):
    pid_file = tmp_path / "server.pid"
    result = step_2_with_plugin("terminator", TERMINATOR, plugin_tree, trees, tmp_path, SERVER_PID_FILE=str(pid_file))
    output = result.stdout + result.stderr
    pid = int(pid_file.read_text())
    assert result.returncode == 2, output  # pytest's "interrupted"
    assert "SIGTERM: stopping the servers this run started" in output, output
    assert "stopping the server on port 1" in output and "Traceback" not in output, output
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass  # the server's group was stopped
    else:
        os.killpg(pid, 9)
        raise AssertionError(f"the server (pid {pid}) outlived the run it belonged to:\n{output}")


SERVER_THEN_WAIT = textwrap.dedent("""
    import os, sys, time
    import pytest
    from pathlib import Path
    from pytest_flmigrate.steps.serve import ServerSpec

    @pytest.fixture(autouse=True)
    def a_server_then_wait(server_pool, tmp_path_factory):
        # step 10's pool starts a stand-in vllm serve (it forks a child, as vLLM's engine core)
        pid_file = Path(os.environ["SERVER_PID_FILE"])
        spec = ServerSpec(os.environ["FAKE_PYTHON"], "tiny", int(os.environ["PORT"]), 1, (), Path.cwd())
        server = server_pool.ensure(spec, pid_file.with_suffix(".log"), print)
        pid_file.write_text(str(server.pid))
        time.sleep(600)  # mid-serve: the run is killed here
        yield
""")


def test_a_sigkill_mid_serve_leaves_no_process_of_the_servers_group(plugin_tree: Path, trees, tmp_path: Path):
    pid_file = tmp_path / "server.pid"
    fake_python = tmp_path / "bin" / "python"
    fake_python.parent.mkdir()
    fake_python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_VLLM}" "$@"\n')
    fake_python.chmod(0o755)
    command, env = step_2_command(
        "server_then_wait",
        SERVER_THEN_WAIT,
        plugin_tree,
        trees,
        tmp_path,
        SERVER_PID_FILE=str(pid_file),
        FAKE_PYTHON=str(fake_python),
        PORT=str(free_port()),
    )
    run = subprocess.Popen(command, cwd=plugin_tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    group = None
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pid_file.exists(), run.communicate(timeout=60)[0].decode()
        group = int(pid_file.read_text())
        members = procs.group_members(group)
        assert len(members) == 3, members  # the watchdog, the server and the server's child
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=60)
        deadline = time.monotonic() + procs.WATCHDOG_GRACE + 15
        while procs.group_members(group) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = procs.group_members(group)
        assert not left, f"process group {group} outlived the run SIGKILLed mid-serve: {left}"
        assert f"the run that started this (pid {run.pid}) is gone" in pid_file.with_suffix(".log").read_text()
    finally:  # nothing of a failed attempt outlives the test
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=60)
        if group is not None and procs.group_members(group):
            os.killpg(group, signal.SIGKILL)
