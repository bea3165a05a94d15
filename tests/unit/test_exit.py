"""Ending a migration run from outside: a Ctrl-C in pytest's own cleanup (its garbage-collector
passes, after the summary line) ends it with one line and exit status 130, never a traceback; a
SIGTERM mid-run ends it as a Ctrl-C does, stopping the servers it started."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

INTERRUPTER = textwrap.dedent("""
    import os, signal, time
    import pytest

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(config):
        os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C while pytest cleans up
        time.sleep(30)
""")


def step_2_with_plugin(plugin: str, source: str, plugin_tree: Path, trees, tmp_path: Path, **env: str):
    """Step 2 of the synthetic model in a pytest subprocess loading ``source`` as plugin ``plugin``."""
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
    return subprocess.run(
        command,
        cwd=plugin_tree,
        env={**os.environ, "PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


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
