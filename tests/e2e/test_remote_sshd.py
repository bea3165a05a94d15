"""The remote GT over a REAL OpenSSH server on loopback, started here (marker ``remote``).

sshd runs as the current user on 127.0.0.1 with a non-default port, its own fresh host key and
an authorized key made by the test; nothing is installed here (``scripts/ci-services``
installs sshd; without it these tests skip saying so). ``python -m http.server`` stands in
for the GT *process* to exercise start, health, status, logs and stop; real vLLM GT servers
are the runtime tier's business.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading

import pytest

from pytest_flmigrate.e2e.gt_config import GTConfig, parse_gt_config
from pytest_flmigrate.e2e.remote import RemoteGT, RemoteProcess
from pytest_flmigrate.e2e.ssh import SSHTarget, connect
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers import health, ports, procs
from pytest_flmigrate.servers.ports import free_port
from tests.e2e.remote_helpers import http_server_argv, wait_until
from tests.e2e.sshd_server import SSHServer

pytestmark = pytest.mark.remote


def shell_for(sshd: SSHServer, **options):
    return connect(
        sshd.target,
        key_file=options.pop("key_file", sshd.client_key),
        known_hosts=options.pop("known_hosts", sshd.known_hosts),
        timeout=options.pop("timeout", 5),
        **options,
    )


def test_lifecycle_of_a_remote_process_over_ssh(sshd, tmp_path):
    shell = shell_for(sshd)
    try:
        assert shell.run("echo $((6*7))").out.strip() == "42"
        process = RemoteProcess(shell, str(tmp_path / "remote state"), "gt-server")
        port = free_port()
        started = process.start(http_server_argv(port, tmp_path / "www"))
        health.wait_healthy(
            f"http://127.0.0.1:{port}",
            timeout=30,
            label="GT",
            alive=lambda: process.status() == "running",
            interval=0.2,
        )
        assert process.status() == "running"
        assert os.getsid(started.pid) == started.pid  # detached from the SSH session
        assert wait_until(lambda: "GET /health" in process.logs(10))
    finally:
        shell.close()
    # the server outlives the SSH connection that started it; a new connection stops it
    assert procs.running(started.pid) and ports.in_use(port)
    shell = shell_for(sshd)
    try:
        again = RemoteProcess(shell, str(tmp_path / "remote state"), "gt-server")
        again.started = started
        assert again.stop(grace=5) == "stopped"
    finally:
        shell.close()
    assert wait_until(lambda: not procs.running(started.pid), 5) and not ports.in_use(port)


def test_remote_gt_start_health_status_logs_stop(sshd, tmp_path):
    port = free_port()
    www = tmp_path / "www"
    http_server_argv(port, www)  # writes www/health
    # http.server stands in for the GT process: a shim drops the vLLM arguments RemoteGT appends
    # (--model M --host H --port P) after printing what it got.
    shim = (
        'echo "model=$3 host=$5 port=$7 gpus=$CUDA_VISIBLE_DEVICES mark=$GT_MARK"; '
        'exec "$0" -u -m http.server --bind "$5" --directory "$1" "$7"'
    )
    config = parse_gt_config(
        {
            "key_file": str(sshd.client_key),
            "known_hosts": str(sshd.known_hosts),
            "connect_timeout": 5,
            "command": ["sh", "-c", shim, sys.executable, str(www)],
            "model": "/weights/it's a model",
            "host": "127.0.0.1",
            "port": port,
            "env": {"GT_MARK": "a b$(x)"},
            "gpu_ids": [0, 1],
            "state_dir": str(tmp_path / "gt state"),
            "health_timeout": 30,
        }
    )
    gt = RemoteGT(sshd.target, config, model=config.model)
    try:
        assert gt.url == f"http://127.0.0.1:{port}"
        started = gt.start()
        assert gt.wait_healthy(interval=0.2) < 30
        assert gt.status() == "running"
        assert f"model=/weights/it's a model host=127.0.0.1 port={port} gpus=0,1 mark=a b$(x)" in gt.logs(20)
        assert gt.stop() == "stopped"
        assert gt.status() == "absent"
        assert wait_until(lambda: not procs.running(started.pid), 5)
    finally:
        gt.stop()
        gt.close()


def test_remote_gt_that_dies_reports_the_remote_log(sshd, tmp_path):
    config = GTConfig(
        key_file=sshd.client_key,
        known_hosts=sshd.known_hosts,
        connect_timeout=5,
        command=(sys.executable, "-c", "import sys; print('CUDA out of memory'); sys.exit(1)"),
        state_dir=str(tmp_path / "st"),
        port=free_port(),
        health_timeout=30,
    )
    gt = RemoteGT(sshd.target, config, model="/w")
    try:
        gt.start()
        with pytest.raises(FlmigrateError) as caught:
            gt.wait_healthy(interval=0.2)
        assert caught.value.message.startswith(f"GT server exited before {gt.url}/health answered; see ")
        assert "CUDA out of memory" in caught.value.detail
    finally:
        gt.stop()
        gt.close()


def test_unknown_host_key_is_refused(sshd):
    with pytest.raises(FlmigrateError) as caught:
        shell_for(sshd, known_hosts=sshd.empty_known_hosts)
    message = caught.value.message
    assert message.startswith(f"GT host {sshd.target}: host key not in {sshd.empty_known_hosts} (ssh-ed25519 SHA256:")
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {sshd.empty_known_hosts}" in message
    assert "insecure_skip_host_key_check" in message and "\n" not in str(caught.value)
    assert sshd.empty_known_hosts.read_text() == ""  # nothing was added


def test_wrong_host_key_is_refused(sshd):
    before = sshd.wrong_known_hosts.read_text()
    with pytest.raises(FlmigrateError) as caught:
        shell_for(sshd, known_hosts=sshd.wrong_known_hosts)
    assert caught.value.message.startswith(f"GT host {sshd.target}: host key does NOT match {sshd.wrong_known_hosts}")
    assert "refusing to connect" in caught.value.message
    assert sshd.wrong_known_hosts.read_text() == before


def test_explicit_opt_out_connects_without_recording_the_key(sshd):
    shell = shell_for(sshd, known_hosts=sshd.empty_known_hosts, insecure=True)
    try:
        assert shell.run("echo ok").out.strip() == "ok"
    finally:
        shell.close()
    assert sshd.empty_known_hosts.read_text() == ""


def test_unauthorized_key_is_one_line(sshd):
    with pytest.raises(
        FlmigrateError, match=f"authentication as {sshd.user} failed with key {sshd.other_key}; authorize the key"
    ):
        shell_for(sshd, key_file=sshd.other_key)


def test_missing_key_file(sshd, tmp_path):
    with pytest.raises(FlmigrateError, match="key file .*nope does not exist"):
        shell_for(sshd, key_file=tmp_path / "nope")


# each connect below gives up within its 1-5 s timeout; one that ignored it would wait out paramiko's
# 15 s handshake default or the kernel's minutes-long TCP connect and fail here
@pytest.mark.timeout(12)
def test_unreachable_hosts_fail_within_the_connect_timeout(sshd):
    closed = SSHTarget(sshd.user, "127.0.0.1", free_port())
    with pytest.raises(FlmigrateError, match=f"^GT host {closed}: connection refused; is sshd running there"):
        connect(closed, key_file=sshd.client_key, known_hosts=sshd.known_hosts, timeout=5)

    silent = socket.socket()  # accepts connections, never speaks SSH
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    mute = SSHTarget(sshd.user, "127.0.0.1", silent.getsockname()[1])
    try:
        with pytest.raises(
            FlmigrateError, match=f"^GT host {mute}: no SSH handshake within 1 s; is an SSH server listening"
        ):
            connect(mute, key_file=sshd.client_key, known_hosts=sshd.known_hosts, timeout=1)
    finally:
        for sock in accepted:
            sock.close()
        silent.close()

    with pytest.raises(FlmigrateError, match=r"^GT host .*@192\.0\.2\.1:22: "):  # TEST-NET-1: never routed
        connect(SSHTarget(sshd.user, "192.0.2.1"), key_file=sshd.client_key, timeout=1)


def test_suite_starts_the_gt_over_ssh_and_stops_it(sshd, run_suite, stub, plugin_tree, tmp_path):
    """``pytest --model tiny -k e2e --gt-ssh ... --gt-config ...``: the GT process (a stub OpenAI
    server standing in for vLLM) is started over SSH, answers, and is stopped at session end."""
    from tests.e2e.conftest import outcomes
    from tests.e2e.stub_server import __file__ as stub_file

    port = free_port()
    # RemoteGT appends --model M --host H --port P: the shim passes the port ($7) to the stub
    shim = 'exec "$0" "$1" "$7" "$3"'
    config = tmp_path / "gt.json"
    config.write_text(
        json.dumps(
            {
                "key_file": str(sshd.client_key),
                "known_hosts": str(sshd.known_hosts),
                "connect_timeout": 5,
                "command": ["sh", "-c", shim, sys.executable, stub_file],
                "model": "/gt/tiny",
                "host": "127.0.0.1",
                "port": port,
                "state_dir": str(tmp_path / "gt state"),
                "health_timeout": 30,
            }
        )
    )
    local = stub(model="/gt/tiny")
    result = run_suite(
        "--model",
        "tiny",
        "-k",
        "e2e",
        "--gt-ssh",
        f"{sshd.user}@127.0.0.1:{sshd.port}",
        "--gt-config",
        str(config),
        local_url=local.url,
    )
    assert outcomes(result) == {"passed": 5, "failed": 0, "skipped": 0, "errors": 0}, result.stdout.str()
    e2e = json.loads((plugin_tree / "reports/tiny/summary.json").read_text())["e2e"]
    assert e2e["gt"] == {
        "url": f"http://127.0.0.1:{port}",
        "source": f"--gt-ssh {sshd.user}@127.0.0.1:{sshd.port}",
        "model": "/gt/tiny",
    }
    assert e2e["matched"] == 5
    assert "stub OpenAI server on 127.0.0.1" in (plugin_tree / "reports/tiny/logs/gt-server.log").read_text()
    assert not (tmp_path / "gt state" / "gt-server.pid").exists()  # stopped at session end
    assert wait_until(lambda: not ports.in_use(port), 5)
