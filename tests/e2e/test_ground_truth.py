"""The GT source the options name (URL / local env / SSH) and the local GT server's lifecycle."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_flmigrate.e2e.gt import NO_SOURCE, GroundTruth
from pytest_flmigrate.e2e.local_gt import LocalGT
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers import ports, procs
from pytest_flmigrate.servers.ports import free_port
from pytest_flmigrate.settings import resolve
from tests.e2e.remote_helpers import http_server_argv, wait_until


def settings_for(plugin_tree: Path, **given):
    return resolve({"model": ("tiny",), "plugin_dir": str(plugin_tree), **given}, plugin_tree)


def ground_truth(plugin_tree, tmp_path, **given) -> GroundTruth:
    return GroundTruth(settings_for(plugin_tree, **given), log_dir=tmp_path / "logs", scratch=tmp_path / "scratch")


def test_gt_url_is_used_as_given_and_never_stopped(plugin_tree, tmp_path):
    gt = ground_truth(plugin_tree, tmp_path, gt_url="http://gpu-box:8122")
    ref = gt.start()
    assert (ref.url, ref.source, ref.hint) == (
        "http://gpu-box:8122",
        "--gt-url http://gpu-box:8122",
        "start it or check --gt-url",
    )
    assert gt.close() == "nothing to stop"


def test_no_source_is_one_line(plugin_tree, tmp_path):
    with pytest.raises(FlmigrateError) as caught:
        ground_truth(plugin_tree, tmp_path).start()
    assert caught.value.message == NO_SOURCE and "\n" not in NO_SOURCE


def test_gt_python_needs_weights_and_an_interpreter(plugin_tree, tmp_path):
    with pytest.raises(FlmigrateError, match="^--gt-model: the GT server needs weights; pass --gt-model PATH"):
        ground_truth(plugin_tree, tmp_path, gt_python=sys.executable).start()
    gt = ground_truth(plugin_tree, tmp_path, gt_python=str(tmp_path / "no-python"), gt_model="/w")
    with pytest.raises(FlmigrateError, match="^--gt-python .*no-python: no such interpreter"):
        gt.start()
    assert gt.close() == "nothing to stop"


def test_gt_ssh_uses_a_server_already_healthy_without_connecting(plugin_tree, tmp_path, stub):
    server = stub()
    config = tmp_path / "gt.json"
    config.write_text(f'{{"port": {server.port}, "url": "{server.url}", "model": "/w"}}')
    # no sshd listens on port 1: connecting would fail, so this proves no connection was made
    gt = ground_truth(plugin_tree, tmp_path, gt_ssh="me@127.0.0.1:1", gt_config=str(config))
    ref = gt.start()
    assert ref.url == server.url and ref.source == "--gt-ssh me@127.0.0.1:1 (already running)"
    assert gt.notes == [f"GT server already healthy at {server.url}: used as it is, not started or stopped"]
    assert gt.close() == "nothing to stop"


def test_gt_ssh_to_a_closed_port_fails_fast(plugin_tree, tmp_path):
    config = tmp_path / "gt.json"
    config.write_text(f'{{"port": {free_port()}, "model": "/w", "connect_timeout": 2}}')
    port = free_port()
    gt = ground_truth(plugin_tree, tmp_path, gt_ssh=f"me@127.0.0.1:{port}", gt_config=str(config))
    with pytest.raises(FlmigrateError, match=f"^GT host me@127.0.0.1:{port}: connection refused"):
        gt.start()


def test_local_gt_lifecycle(tmp_path):
    port = free_port()
    gt = LocalGT(
        sys.executable,
        "/w",
        log_path=tmp_path / "logs/gt-server.log",
        scratch=tmp_path / "scratch",
        port=port,
        argv=http_server_argv(port, tmp_path / "www"),
    )
    pid = gt.start()
    try:
        assert gt.url == f"http://127.0.0.1:{port}"
        assert gt.wait_healthy(timeout=20, interval=0.1) < 20 and gt.alive()
        env = gt.environment()
        assert env["VLLM_HOST_IP"] == "127.0.0.1" and env["TMPDIR"] == str(tmp_path / "scratch/tmp")
        assert wait_until(lambda: "GET /health" in gt.log_tail())
    finally:
        outcome = gt.stop(grace=5)
    assert outcome == "stopped" and not procs.running(pid) and not ports.in_use(port)
    assert gt.stop() == "not started by this run"


def test_local_gt_that_dies_reports_its_log(tmp_path):
    gt = LocalGT(
        sys.executable,
        "/w",
        log_path=tmp_path / "gt.log",
        scratch=tmp_path / "s",
        argv=[sys.executable, "-c", "import sys; print('no module named vllm'); sys.exit(1)"],
    )
    gt.start()
    with pytest.raises(FlmigrateError) as caught:
        gt.wait_healthy(timeout=20, interval=0.1)
    assert caught.value.message == f"GT server exited before {gt.url}/health answered; see {tmp_path / 'gt.log'}"
    assert "no module named vllm" in caught.value.detail
    gt.stop()


def test_local_gt_argv_is_vllm_serve_on_loopback(tmp_path):
    gt = LocalGT(
        "/env/bin/python",
        "/w",
        log_path=tmp_path / "l",
        scratch=tmp_path,
        port=9,
        tp=2,
        serve_args=("--dtype", "float32"),
    )
    assert gt.argv == [
        "/env/bin/python",
        "-m",
        "vllm.entrypoints.cli.main",
        "serve",
        "/w",
        "--host",
        "127.0.0.1",
        "--port",
        "9",
        "--tensor-parallel-size",
        "2",
        "--dtype",
        "float32",
    ]
