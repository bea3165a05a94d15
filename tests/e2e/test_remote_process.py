"""The remote process lifecycle scripts, run here through ``sh -c`` (the real-sshd tests run the
same scripts through paramiko): start, status, logs, stop, quoting, and stopping only our pid."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from pytest_flmigrate.e2e.remote import RemoteProcess
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers import health, ports, procs
from pytest_flmigrate.servers.ports import free_port
from tests.e2e.remote_helpers import LocalShell, http_server_argv, wait_until


@pytest.fixture
def process(tmp_path):
    made = RemoteProcess(LocalShell(), str(tmp_path / "state dir"), "gt-server")
    yield made
    if made.started is not None:
        made.stop(grace=2)


def test_start_status_logs_stop(process, tmp_path):
    port = free_port()
    started = process.start(http_server_argv(port, tmp_path / "www"))
    assert started.pid > 0 and started.start_time.isdigit()
    assert os.getpgid(started.pid) == started.pid  # its own process group
    assert os.getsid(started.pid) == started.pid  # and session (no terminal, survives the SSH channel)
    health.wait_healthy(
        f"http://127.0.0.1:{port}", timeout=20, label="GT", alive=lambda: process.status() == "running", interval=0.1
    )
    assert process.status() == "running"
    assert wait_until(lambda: "GET /health" in process.logs(20))
    assert process.stop(grace=5) == "stopped"
    assert not procs.running(started.pid) and not ports.in_use(port)
    assert process.status() == "absent" and process.started is None


def test_stop_takes_the_whole_process_group(process, tmp_path):
    marker = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {shlex.quote(str(marker))}; exec sleep 301"
    process.start(["sh", "-c", script])
    assert wait_until(marker.exists) and wait_until(lambda: marker.read_text().strip() != "")
    child = int(marker.read_text())
    assert procs.running(child)
    assert process.stop(grace=2) == "stopped"
    assert wait_until(lambda: not procs.running(child), 5)


def test_term_ignored_then_killed(process):
    process.start(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"]
    )
    pid = process.started.pid
    assert wait_until(lambda: process.status() == "running")
    assert process.stop(grace=0.5) == "killed"
    assert wait_until(lambda: not procs.running(pid), 5)


def test_untrusted_arguments_and_env_stay_literal(process, tmp_path):
    evil = "x'; touch PWNED; echo '$(touch PWNED2)`touch PWNED3`\"; touch PWNED4"
    process.start(
        [
            sys.executable,
            "-c",
            "import os, sys; print(repr(sys.argv[1:])); print(repr(os.environ['EVIL']))",
            evil,
            "two words",
        ],
        env={"EVIL": evil},
    )
    state = tmp_path / "state dir"
    assert wait_until(lambda: process.status() == "exited")
    log = (state / "gt-server.log").read_text()
    assert repr([evil, "two words"]) in log and repr(evil) in log
    assert not list(state.glob("PWNED*")) and not list(tmp_path.glob("PWNED*"))


def test_bad_env_names_are_refused(process):
    with pytest.raises(FlmigrateError, match="not valid names"):
        process.start(["true"], env={"A; rm -rf /": "x"})


def test_a_running_process_is_never_started_twice_nor_taken_over(process, tmp_path):
    process.start(["sleep", "300"])
    second = RemoteProcess(LocalShell(), process.state_dir, "gt-server")
    with pytest.raises(
        FlmigrateError,
        match=r"a process started earlier \(pid \d+, .*gt-server.pid\) is still running; this run leaves it alone",
    ):
        second.start(["sleep", "300"])
    assert second.stop() == "not started by this run"
    assert process.status() == "running"


def test_stop_leaves_a_foreign_pid_alone(process, tmp_path):
    process.start(["sleep", "300"])
    ours = process.started.pid
    foreign = subprocess.Popen(["sleep", "300"], start_new_session=True)
    pid_file = tmp_path / "state dir" / "gt-server.pid"
    try:
        pid_file.write_text(f"{foreign.pid}\n")
        assert process.status() == "replaced"
        assert process.stop(grace=1) == (
            f"left alone: {process.pid_file} now names pid {foreign.pid}, not the {ours} this run started"
        )
        assert procs.running(foreign.pid) and procs.running(ours)
    finally:
        foreign.kill()
        foreign.wait()
        pid_file.write_text(f"{ours}\n")
    assert process.stop(grace=2) == "stopped" and not procs.running(ours)


def test_a_reused_pid_is_left_alone(process):
    process.start(["sleep", "300"])
    real = process.started
    process.started = type(real)(real.pid, str(int(real.start_time) + 1))  # as if the pid were recycled
    assert process.status() == "replaced"
    assert process.stop() == f"left alone: pid {real.pid} now belongs to another process"
    assert procs.running(real.pid)
    process.started = real


def test_a_process_that_dies_at_start_reports_its_log(process):
    process.start([sys.executable, "-c", "import sys; print('weights not found: /nope'); sys.exit(3)"])
    with pytest.raises(FlmigrateError) as caught:
        health.wait_healthy(
            f"http://127.0.0.1:{free_port()}",
            timeout=20,
            label="GT",
            alive=lambda: process.status() == "running",
            log_tail=lambda: process.logs(5),
            log_hint=process.log_file,
            interval=0.1,
        )
    assert caught.value.message.startswith("GT server exited before http://127.0.0.1:")
    assert "weights not found: /nope" in caught.value.detail
    assert process.stop() == "not running"


def test_health_wait_is_bounded(process):
    process.start(["sleep", "300"])
    clock = iter(range(0, 1000, 10))
    with pytest.raises(FlmigrateError, match=r"GT server http://127.0.0.1:\d+: not healthy within 30 s"):
        health.wait_healthy(
            f"http://127.0.0.1:{free_port()}",
            timeout=30,
            label="GT",
            alive=lambda: True,
            clock=lambda: next(clock),
            sleep=lambda _: None,
        )


def test_docker_commands_wrap_the_script_as_one_quoted_argument(tmp_path):
    process = RemoteProcess(LocalShell(), "/tmp/st", "gt-server", docker_container="gt; rm -rf /")
    command = process.command("echo 'hi' $HOME")
    assert shlex.split(command) == ["docker", "exec", "gt; rm -rf /", "sh", "-c", "echo 'hi' $HOME"]
    script = process.start_script(["python3", "-m", "vllm", "--model", "/w/a b"], {"HF_HOME": "/h; x"})
    assert "env 'HF_HOME=/h; x' python3 -m vllm --model '/w/a b'" in script


def test_bad_process_names():
    with pytest.raises(ValueError):
        RemoteProcess(LocalShell(), "/tmp", "../x")


def test_no_pid_file_left_means_absent(tmp_path):
    assert RemoteProcess(LocalShell(), str(tmp_path), "gt-server").status() == "absent"
