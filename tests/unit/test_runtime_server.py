"""The server pool of step 10 (start, health bound, log tail, reuse, keep, stop) with a stand-in
server process: real process groups, real HTTP, real state files; no vLLM (tests/runtime/ has it)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.runtime_run import RuntimeRun
from pytest_flmigrate.servers import health, procs
from pytest_flmigrate.servers.answers import ErrorAnswer
from pytest_flmigrate.servers.ports import free_port
from pytest_flmigrate.steps import serve

FAKE = Path(__file__).resolve().parents[1] / "fixtures" / "fake_vllm_python.py"


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    wrapper = tmp_path / "bin" / "python"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    (tmp_path / "plugin" / "vllm_fl").mkdir(parents=True)
    (tmp_path / "plugin" / "vllm_fl" / "__init__.py").write_text("def register_model():\n    pass\n")
    return tmp_path / "plugin"


def spec(
    fake_python: str, port: int, plugin: Path, model: str = "tiny", extra: tuple[str, ...] = ()
) -> serve.ServerSpec:
    return serve.ServerSpec(python=fake_python, model=model, port=port, tp=1, extra=extra, plugin_dir=plugin)


@pytest.fixture
def said() -> list[str]:
    return []


def test_start_chat_and_stop_at_session_end(fake_python, port, plugin, tmp_path, said):
    pool = serve.ServerPool(keep=False)
    started = pool.ensure(spec(fake_python, port, plugin), tmp_path / "logs" / "server.log", said.append)
    assert health.is_healthy(started.url) and not started.reused
    assert started.command[1:4] == ["-m", "vllm.entrypoints.cli.main", "serve"]
    assert len(procs.group_members(started.pid)) == 3  # the watchdog, the server and its child
    assert serve.chat(started.url)["text"] == "hello from fake"
    state = json.loads((serve.state_dir() / f"port-{port}.json").read_text())
    assert state["pid"] == started.pid and state["kept"] is False
    assert pool.ensure(spec(fake_python, port, plugin), tmp_path / "logs" / "server.log", said.append) is started

    pool.finish(said.append)
    assert not procs.group_members(started.pid)
    assert not (serve.state_dir() / f"port-{port}.json").exists()
    assert not started.scratch.exists()
    assert any("session end" in line for line in said)


def test_kept_server_is_reused_then_replaced_when_the_plugin_code_changes(fake_python, port, plugin, tmp_path, said):
    first = serve.ServerPool(keep=True)
    kept = first.ensure(spec(fake_python, port, plugin), tmp_path / "a.log", said.append)
    first.finish(said.append)
    assert procs.group_members(kept.pid), "--keep-servers stopped the server"
    assert json.loads((serve.state_dir() / f"port-{port}.json").read_text())["kept"] is True

    second = serve.ServerPool(keep=False)
    reused = second.ensure(spec(fake_python, port, plugin), tmp_path / "b.log", said.append)
    assert reused.reused and reused.pid == kept.pid and reused.log == tmp_path / "a.log"
    second.finish(said.append)
    assert procs.group_members(kept.pid), "a reused kept server is stopped by --stop-servers only"

    (plugin / "vllm_fl" / "__init__.py").write_text("def register_model():\n    return 1\n")
    third = serve.ServerPool(keep=False)
    fresh = third.ensure(spec(fake_python, port, plugin), tmp_path / "c.log", said.append)
    assert not fresh.reused and fresh.pid != kept.pid
    assert not procs.group_members(kept.pid)
    assert any("plugin code changed" in line for line in said)
    third.finish(said.append)
    assert not procs.group_members(fresh.pid)


def test_stop_servers_ends_kept_servers(fake_python, port, plugin, tmp_path, said):
    pool = serve.ServerPool(keep=True)
    kept = pool.ensure(spec(fake_python, port, plugin), tmp_path / "a.log", said.append)
    pool.finish(said.append)
    assert serve.stop_kept(said.append, tmp_path / "another-checkout") == []
    assert procs.group_members(kept.pid), "--stop-servers in another checkout stopped this one's server"
    assert serve.stop_kept(said.append, plugin) == [port]
    assert not procs.group_members(kept.pid)
    assert not list(serve.state_dir().glob("port-*.json"))
    assert serve.stop_kept(said.append) == [] and said[-1] == "no kept server running"


def test_server_that_exits_fails_with_its_log_tail_and_leaves_nothing(fake_python, port, plugin, tmp_path, said):
    pool = serve.ServerPool(keep=False)
    log = tmp_path / "server.log"
    with pytest.raises(FlmigrateError) as caught:
        pool.ensure(spec(fake_python, port, plugin, model="exit"), log, said.append)
    message = str(caught.value)
    assert message.splitlines()[0] == (
        f"local server exited before http://127.0.0.1:{port}/health answered: "
        f"ValueError: this checkpoint cannot be served (fake); see {log}"
    )
    assert f"fake vllm serve exit on port {port}" in message  # the log's tail follows
    child = int(log.read_text().split("child ")[1].split()[0])
    assert not procs.running(child), "the server's child outlived it"
    assert not list(serve.state_dir().glob("port-*.json"))


def test_health_wait_is_bounded(fake_python, port, plugin, tmp_path, said, monkeypatch):
    monkeypatch.setenv(serve.TIMEOUT_ENV, "2")
    pool = serve.ServerPool(keep=False)
    with pytest.raises(
        FlmigrateError,
        match=rf"local server http://127.0.0.1:{port}: not healthy within 2 s; {serve.TIMEOUT_ENV} raises the bound; see ",
    ):
        pool.ensure(spec(fake_python, port, plugin, model="hang"), tmp_path / "server.log", said.append)
    assert not list(serve.state_dir().glob("port-*.json"))


def test_port_held_by_another_process_is_not_touched(fake_python, port, plugin, tmp_path, said):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        with pytest.raises(FlmigrateError, match=rf"--port {port}: another process \(not a server flmigrate started\)"):
            serve.ServerPool(keep=False).ensure(spec(fake_python, port, plugin), tmp_path / "s.log", said.append)


def test_a_server_another_live_run_started_is_neither_stopped_nor_reused(fake_python, port, plugin, tmp_path, said):
    theirs = serve.ServerPool(keep=False)
    running = theirs.ensure(spec(fake_python, port, plugin), tmp_path / "a.log", said.append)
    path = serve.state_dir() / f"port-{port}.json"
    state = json.loads(path.read_text())
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other_run:
        path.write_text(json.dumps({**state, "started_by": other_run.pid}))
        with pytest.raises(FlmigrateError) as caught:
            serve.ServerPool(keep=False).ensure(spec(fake_python, port, plugin), tmp_path / "b.log", said.append)
        other_run.kill()
    assert str(caught.value) == (
        f"--port {port}: another flmigrate run (pid {other_run.pid}, plugin {plugin}) serves there; "
        "pass a free --port or wait for that run to end"
    )
    assert procs.group_members(running.pid), "the other run's server was stopped"
    path.write_text(json.dumps(state))
    theirs.finish(said.append)
    assert not procs.group_members(running.pid)


def test_a_chat_answered_with_an_error_says_the_servers_message_in_its_first_line(fake_python, port, plugin, tmp_path):
    pool = serve.ServerPool(keep=False)
    server = pool.ensure(spec(fake_python, port, plugin, model="fails"), tmp_path / "s.log", [].append)
    try:
        with pytest.raises(FlmigrateError) as caught:
            serve.chat(server.url, "hi", 4)
    finally:
        pool.finish([].append)
    assert caught.value.message == f"chat request to {server.url} answered HTTP 500: EngineCore encountered an issue."


def test_fingerprint_covers_command_and_plugin_sources(fake_python, port, plugin):
    base = spec(fake_python, port, plugin).fingerprint()
    assert spec(fake_python, port, plugin).fingerprint() == base
    assert spec(fake_python, port, plugin, extra=("--dtype", "float32")).fingerprint() != base
    (plugin / "vllm_fl" / "models").mkdir()
    (plugin / "vllm_fl" / "models" / "x.py").write_text("X = 1\n")
    assert spec(fake_python, port, plugin).fingerprint() != base


def test_log_evidence_reads_resolution_and_overrides(tmp_path):
    log = tmp_path / "server.log"
    log.write_text(
        "WARNING 11-26 06:04:56 [registry.py:774] Model architecture MiMoForCausalLM is already registered, "
        "and will be overwritten by the new model class vllm_fl.models.mimo:MiMoForCausalLM.\n"
        "INFO 11-26 06:05:09 [model.py:514] Resolved architecture: MiMoForCausalLM\n"
    )
    assert serve.log_evidence(log) == {
        "resolved": ["MiMoForCausalLM"],
        "overridden_by": ["vllm_fl.models.mimo:MiMoForCausalLM"],
    }


# what vLLM 0.24.0 does: the registry's override line at DEBUG, the rest of vLLM at INFO
REGISTRY_AT_DEBUG = """
import logging, logging.config, json, sys
logging.config.dictConfig(json.load(open(sys.argv[1])))
logging.getLogger("vllm.model_executor.models.registry").debug(
    "Model architecture %s is already registered, and will be overwritten by the new model class %s.",
    "MiMoForCausalLM", "vllm_fl.models.mimo:MiMoForCausalLM")
logging.getLogger("vllm.config.model").debug("noise at debug")
logging.getLogger("vllm.config.model").info("Resolved architecture: MiMoForCausalLM")
"""


def test_a_server_logs_the_registrys_debug_override_line_and_vllms_info(tmp_path, monkeypatch):
    monkeypatch.delenv("VLLM_LOGGING_CONFIG_PATH", raising=False)
    monkeypatch.delenv("VLLM_LOGGING_LEVEL", raising=False)
    env = serve.server_env(tmp_path)
    log = tmp_path / "server.log"
    with log.open("w") as out:
        subprocess.run(
            [sys.executable, "-c", REGISTRY_AT_DEBUG, env["VLLM_LOGGING_CONFIG_PATH"]], stdout=out, check=True
        )
    assert "noise at debug" not in log.read_text()
    assert serve.log_evidence(log) == {
        "resolved": ["MiMoForCausalLM"],
        "overridden_by": ["vllm_fl.models.mimo:MiMoForCausalLM"],
    }


def test_a_users_own_vllm_logging_config_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", "/etc/mine.json")
    assert serve.server_env(tmp_path)["VLLM_LOGGING_CONFIG_PATH"] == "/etc/mine.json"


@pytest.mark.parametrize("state", [{"pid": 123, "plugin_dir": None}, {"pid": 123, "scratch": 5}, ["pid", 123]])
def test_corrupt_state_file_is_dropped_without_a_traceback(state, plugin, said):
    path = serve.state_dir() / "port-9.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(state))
    assert serve.stop_kept(said.append, plugin) == [] and not path.exists()


def test_state_file_naming_a_foreign_folder_does_not_remove_it(fake_python, port, plugin, tmp_path, said):
    pool = serve.ServerPool(keep=True)
    pool.ensure(spec(fake_python, port, plugin), tmp_path / "a.log", said.append)
    pool.finish(said.append)
    path = serve.state_dir() / f"port-{port}.json"
    precious = tmp_path / "precious"
    precious.mkdir()
    path.write_text(json.dumps({**json.loads(path.read_text()), "scratch": str(precious)}))
    assert serve.stop_kept(said.append) == [port]
    assert precious.is_dir()


@pytest.mark.parametrize(
    ("text", "tokens", "answered", "on_dummy_weights"),
    [
        ("hello", 16, True, True),
        ("\n" * 16, 16, False, True),  # whitespace alone: no answer, but from dummy weights any token
        ("", 16, False, True),  # dummy weights' tokens may decode to nothing
        ("", 0, False, False),
    ],
)
def test_a_chat_reply_is_an_answer_with_text_or_from_dummy_weights_any_token(text, tokens, answered, on_dummy_weights):
    reply = {"text": text, "completion_tokens": tokens}
    assert serve.answered(reply) is answered
    assert serve.answered(reply, tokens_suffice=True) is on_dummy_weights


def test_a_server_error_answer_names_what_the_server_logged_while_answering(tmp_path):
    log = tmp_path / "server-8122.log"
    log.write_text("ERROR Error retrieving safetensors: ValueError: a startup complaint\n")
    runtime = RuntimeRun(SimpleNamespace())
    runtime.server = lambda: SimpleNamespace(log=log)  # type: ignore[method-assign]

    def answered(status: int):
        def request() -> dict:
            with log.open("a") as stream:
                stream.write("Traceback (most recent call last):\nKeyError: 'audio_tower'\n")
            response = requests.Response()
            response.status_code = status
            response._content = b'{"error": {"message": "EngineCore encountered an issue."}}'
            raise ErrorAnswer("chat request", "u", response)

        return request

    with pytest.raises(FlmigrateError) as caught:
        runtime._with_log_cause(answered(500))
    assert caught.value.message == (
        f"chat request to u answered HTTP 500: EngineCore encountered an issue.; its log says "
        f"KeyError: 'audio_tower' (see {log})"
    )
    with pytest.raises(ErrorAnswer) as caught:
        runtime._with_log_cause(answered(400))  # the request's own fault: as the server answered
    assert caught.value.message == "chat request to u answered HTTP 400: EngineCore encountered an issue."
