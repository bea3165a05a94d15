"""Step 10: the local ``vllm serve`` of the pinned env with the plugin, and the servers kept for reuse.

A server is started as ``PYTHON -m vllm.entrypoints.cli.main serve MODEL --host 127.0.0.1 --port N
--tensor-parallel-size TP <--serve-args>`` (``vllm serve`` without depending on a console script)
in its own process group, with the environment of docs/cpu-vllm.md and a scratch TMPDIR of its own,
its output in ``reports/<model>/logs/server-<port>.log``. It is up when ``/health`` answers; a bound
(``FLMIGRATE_SERVER_TIMEOUT``, default 900 s) limits the wait, and a server that exits or times out
is stopped as a group, its log's tail becoming the error.

Every server the tool starts gets a state file ``<cache>/servers/port-<N>.json`` (pid, process
start time, command, fingerprint, log). The fingerprint hashes the command and the plugin's
``vllm_fl`` sources, so a kept server is reused only while it would still be started the same way
and serves the same plugin code. At session end started servers stop, unless ``--keep-servers``:
then they stay up and a later run reuses them; ``--stop-servers`` ends kept servers. A process is
only ever stopped when its state file names it and its start time still matches (no pid reuse).
A run killed outright (SIGKILL, no cleanup) takes its servers along: each group's leader is a
watchdog (servers/watchdog.py) that ends the group when the run is gone; kept servers have none.

The server logs as vLLM does, but for its model registry at DEBUG (``registry_logging``, unless
``VLLM_LOGGING_CONFIG_PATH`` is set): the registry says that the plugin's class overwrites an
architecture the pin has at WARNING on some pins and at DEBUG on others (vLLM 0.24.0), and that
line is step 10's evidence that the server runs the plugin's class (``log_evidence``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from pytest_flmigrate import envs
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index import sources
from pytest_flmigrate.layout import PLUGIN_PACKAGE
from pytest_flmigrate.manifest import atomic_write
from pytest_flmigrate.servers import health, log_errors, ports, procs
from pytest_flmigrate.servers.answers import ErrorAnswer

HOST = ports.HOST
TIMEOUT_ENV = "FLMIGRATE_SERVER_TIMEOUT"
DEFAULT_TIMEOUT = 900.0
Say = Callable[[str], None]


def state_dir() -> Path:
    return sources.cache_dir() / "servers"


#: vLLM's model registry, whose override line is step 10's evidence
REGISTRY_LOGGER = "vllm.model_executor.models.registry"


def registry_logging(level: str) -> dict:
    """A logging config (``VLLM_LOGGING_CONFIG_PATH``) like vLLM's own at ``level``, with the
    model registry at DEBUG."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "vllm": {
                "format": "%(levelname)s %(asctime)s [%(filename)s:%(lineno)d] %(message)s",
                "datefmt": "%m-%d %H:%M:%S",
            }
        },
        "handlers": {
            "vllm": {
                "class": "logging.StreamHandler",
                "formatter": "vllm",
                "level": "DEBUG",
                "stream": "ext://sys.stdout",
            }
        },
        "loggers": {
            "vllm": {"handlers": ["vllm"], "level": level, "propagate": False},
            REGISTRY_LOGGER: {"level": "DEBUG"},
        },
    }


def server_env(scratch: Path) -> dict[str, str]:
    """The environment of a server the tool starts: envs.vllm_env, logging as ``registry_logging``."""
    env = envs.vllm_env(scratch)
    if "VLLM_LOGGING_CONFIG_PATH" not in env:
        config = scratch / "logging.json"
        config.write_text(json.dumps(registry_logging(env.get("VLLM_LOGGING_LEVEL", "INFO"))), encoding="utf-8")
        env["VLLM_LOGGING_CONFIG_PATH"] = str(config)
    return env


def health_timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        raise FlmigrateError(f"{TIMEOUT_ENV}={os.environ[TIMEOUT_ENV]!r}: expected seconds") from None


def plugin_code_digest(plugin_dir: Path) -> str:
    """sha256 over the plugin package's Python sources (path and content)."""
    digest = hashlib.sha256()
    package = plugin_dir / PLUGIN_PACKAGE
    for path in sorted(package.rglob("*.py")) if package.is_dir() else ():
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(plugin_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class ServerSpec:
    python: str
    model: str
    port: int
    tp: int
    extra: tuple[str, ...]
    plugin_dir: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        return [
            self.python,
            "-m",
            envs.CLI_MODULE,
            "serve",
            self.model,
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--tensor-parallel-size",
            str(self.tp),
            *self.extra,
        ]

    def fingerprint(self) -> str:
        payload = json.dumps({"command": self.command(), "code": plugin_code_digest(self.plugin_dir)})
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class Server:
    url: str
    port: int
    pid: int  # leader and process group id
    command: list[str]
    fingerprint: str
    log: Path
    scratch: Path | None
    reused: bool = False
    startup_seconds: float | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {
            "url": self.url,
            "pid": self.pid,
            "reused": self.reused,
            "log": str(self.log),
            "startup_seconds": None if self.startup_seconds is None else round(self.startup_seconds, 1),
            "command": self.command,
        }


# --- state files ------------------------------------------------------------------------------


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _state_path(port: int) -> Path:
    return state_dir() / f"port-{port}.json"


def _write_state(server: Server, *, kept: bool, plugin_dir: Path) -> None:
    path = _state_path(server.port)
    data = {
        "pid": server.pid,
        "start_ticks": procs.start_ticks(server.pid),
        "boot_id": _boot_id(),
        "port": server.port,
        "url": server.url,
        "command": server.command,
        "fingerprint": server.fingerprint,
        "log": str(server.log),
        "scratch": str(server.scratch) if server.scratch else None,
        "kept": kept,
        "plugin_dir": str(plugin_dir),
        "started_by": os.getpid(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write(path, json.dumps(data, indent=2) + "\n")


#: The keys of a state file and their types (``_write_state``); a file without them is corrupt.
STATE_TYPES: dict[str, type | tuple[type, ...]] = {
    "pid": int,
    "start_ticks": (int, type(None)),
    "boot_id": str,
    "port": int,
    "url": str,
    "command": list,
    "fingerprint": str,
    "log": str,
    "scratch": (str, type(None)),
    "plugin_dir": str,
}


def _read_state(path: Path) -> dict | None:
    """The state file at ``path``, or None when it is unreadable or corrupt."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(key), kind) for key, kind in STATE_TYPES.items()):
        return None
    return data


def _state_alive(state: dict) -> bool:
    """The recorded process still runs: same boot, same start time, still leading its group."""
    pid = state["pid"]
    return (
        state.get("boot_id") == _boot_id()
        and state.get("start_ticks") is not None
        and procs.start_ticks(pid) == state["start_ticks"]
        and bool(procs.group_members(pid))
    )


def _owned_elsewhere(state: dict) -> bool:
    """The recorded server belongs to another run still going: not kept, started by a live process
    other than this one (that run stops it at its end, so it is neither reused nor stopped here)."""
    owner = state.get("started_by")
    return not state.get("kept") and isinstance(owner, int) and owner != os.getpid() and procs.running(owner)


def _forget(path: Path, state: dict | None) -> None:
    path.unlink(missing_ok=True)
    if state and state.get("scratch"):
        procs.remove_scratch(Path(state["scratch"]))


def _stop_recorded(path: Path, state: dict) -> bool:
    """Stop the server a state file names (if it still runs); forget it. True when one was stopped."""
    stopped = False
    if _state_alive(state):
        procs.stop_group(state["pid"])
        stopped = True
    _forget(path, state)
    return stopped


def stop_kept(say: Say, plugin_dir: Path | None = None) -> list[int]:
    """``--stop-servers``: stop the servers state files name (those kept for ``plugin_dir``, when
    given); ports of those stopped."""
    stopped = []
    for path in sorted(state_dir().glob("port-*.json")):
        state = _read_state(path)
        if state is None:
            path.unlink(missing_ok=True)
            continue
        if plugin_dir is not None and Path(state.get("plugin_dir", "")).resolve() != plugin_dir.resolve():
            continue
        if _state_alive(state):
            say(f"stopping the kept server on port {state['port']} (pid {state['pid']}, log {state['log']})")
        if _stop_recorded(path, state):
            stopped.append(state["port"])
    if not stopped:
        say("no kept server running" + (f" for {plugin_dir}" if plugin_dir is not None else ""))
    return stopped


# --- health and requests ----------------------------------------------------------------------


def chat(url: str, prompt: str = "Hello! Please introduce yourself.", max_tokens: int = 16) -> dict:
    """One chat completion at temperature 0; the reply's text, token count and time."""
    start = time.monotonic()
    try:
        models = requests.get(url + "/v1/models", timeout=60)
        models.raise_for_status()
        model = models.json()["data"][0]["id"]
        response = requests.post(
            url + "/v1/chat/completions",
            json={
                "model": model,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "temperature": 0,
                "ignore_eos": True,
            },
            timeout=600,
        )
    except requests.RequestException as exc:
        raise FlmigrateError(f"chat request to {url} failed: {exc}") from None
    if response.status_code != 200:
        raise ErrorAnswer("chat request", url, response)
    try:
        data = response.json()
        choice = data["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        raise FlmigrateError(f"the chat answer of {url} holds no choices", response.text[-2000:]) from None
    return {
        "model": model,
        "text": choice["message"].get("content") or "",
        "finish_reason": choice.get("finish_reason"),
        "completion_tokens": (data.get("usage") or {}).get("completion_tokens"),
        "seconds": round(time.monotonic() - start, 2),
    }


def pool(url: str, task: str, text: str = "Hello! Please introduce yourself.") -> dict:
    """One ``/pooling`` request of a pooling model for ``task``: how many vectors of how many values, and the time."""
    start = time.monotonic()
    try:
        models = requests.get(url + "/v1/models", timeout=60)
        models.raise_for_status()
        model = models.json()["data"][0]["id"]
        response = requests.post(url + "/pooling", json={"model": model, "input": text, "task": task}, timeout=600)
    except requests.RequestException as exc:
        raise FlmigrateError(f"pooling request to {url} failed: {exc}") from None
    if response.status_code != 200:
        raise ErrorAnswer(f"pooling request ({task})", url, response)
    try:
        pooled = response.json()["data"][0]["data"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise FlmigrateError(f"the pooling answer of {url} holds no vectors", response.text[-2000:]) from None
    rows = pooled if pooled and isinstance(pooled[0], list) else [pooled]
    return {
        "model": model,
        "task": task,
        "vectors": len(rows),
        "values": len(rows[0]) if rows else 0,
        "seconds": round(time.monotonic() - start, 2),
    }


def metrics(url: str) -> str:
    """The server's Prometheus ``/metrics`` text."""
    try:
        response = requests.get(url + "/metrics", timeout=60)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise FlmigrateError(f"metrics request to {url} failed: {exc}") from None
    return response.text


def answered(reply: dict, tokens_suffice: bool = False) -> bool:
    """A chat reply counts as an answer when its text is more than whitespace (a tiny model's with
    synthesized weights too: at its init scale of 0.1, tiny/shrink.py, it answers with text) or,
    with ``tokens_suffice`` (a tiny model on vLLM's dummy weights, whose tokens may decode to
    nothing), when it generated any token."""
    return bool(reply["text"].strip()) or (tokens_suffice and bool(reply["completion_tokens"]))


def log_evidence(log: Path) -> dict:
    """What the server log says about the architecture: resolved name, plugin overrides."""
    resolved, overrides = [], []
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        if "Resolved architecture:" in line:
            resolved.append(line.split("Resolved architecture:", 1)[1].strip())
        elif "will be overwritten by the new model class" in line:
            overrides.append(line.split("will be overwritten by the new model class", 1)[1].strip().rstrip("."))
    return {"resolved": sorted(set(resolved)), "overridden_by": sorted(set(overrides))}


# --- the pool of one session ------------------------------------------------------------------


class ServerPool:
    """The servers of one session: at most one per port; started ones stop at the end unless kept."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.current: dict[int, Server] = {}
        self.started: dict[int, tuple[Server, Path]] = {}

    def ensure(self, spec: ServerSpec, log: Path, say: Say) -> Server:
        """A healthy server for ``spec``: this session's, a kept one with the same fingerprint, or a new one."""
        fingerprint = spec.fingerprint()
        current = self.current.get(spec.port)
        if current is not None:
            if current.fingerprint == fingerprint and health.is_healthy(current.url):
                return current
            self._stop_current(spec.port, say, "another command needs the port")
        path = _state_path(spec.port)
        state = _read_state(path)
        if state is not None and _state_alive(state) and _owned_elsewhere(state):
            raise FlmigrateError(
                f"--port {spec.port}: another flmigrate run (pid {state['started_by']}, plugin "
                f"{state['plugin_dir']}) serves there; pass a free --port or wait for that run to end"
            )
        if state is not None:
            if _state_alive(state) and state.get("fingerprint") == fingerprint and health.is_healthy(state["url"]):
                server = Server(
                    state["url"],
                    spec.port,
                    state["pid"],
                    state["command"],
                    fingerprint,
                    Path(state["log"]),
                    Path(state["scratch"]) if state.get("scratch") else None,
                    reused=True,
                )
                say(f"reusing the server kept on port {spec.port} (pid {server.pid}, log {server.log})")
                self.current[spec.port] = server
                return server
            if _state_alive(state):
                why = (
                    "not healthy"
                    if state.get("fingerprint") == fingerprint
                    else "its command or the plugin code changed"
                )
                say(f"stopping the kept server on port {spec.port} (pid {state['pid']}): {why}")
            _stop_recorded(path, state)
        if ports.in_use(spec.port):
            raise FlmigrateError(
                f"--port {spec.port}: another process (not a server flmigrate started) listens there; "
                "stop it or pass a free --port"
            )
        return self._start(spec, fingerprint, log, say)

    def _start(self, spec: ServerSpec, fingerprint: str, log: Path, say: Say) -> Server:
        scratch = procs.scratch_dir(f"serve-{spec.port}")
        command = spec.command()
        start = time.monotonic()
        try:
            proc = procs.start_group(command, env=server_env(scratch), cwd=scratch, log=log, outlive=self.keep)
        except FlmigrateError:
            procs.remove_scratch(scratch)
            raise
        server = Server(spec.url, spec.port, proc.pid, command, fingerprint, log, scratch, proc=proc)
        _write_state(server, kept=False, plugin_dir=spec.plugin_dir)
        say(f"starting vllm serve on port {spec.port} (pid {proc.pid}, log {log})")
        try:
            health.wait_healthy(
                spec.url,
                timeout=health_timeout(),
                label="local",
                alive=lambda: proc.poll() is None,
                log_tail=lambda: procs.tail(log),
                log_hint=str(log),
                timeout_hint=f"{TIMEOUT_ENV} raises the bound",
                exit_cause=lambda: log_errors.summary(
                    log.read_text(encoding="utf-8", errors="replace"), spec.plugin_dir
                ),
                interval=0.5,
            )
        except BaseException:
            procs.stop_group(proc.pid, leader=proc)
            _forget(_state_path(spec.port), {"scratch": str(scratch)})
            raise
        server.startup_seconds = time.monotonic() - start
        self.current[spec.port] = server
        self.started[spec.port] = (server, spec.plugin_dir)
        return server

    def _stop_current(self, port: int, say: Say, why: str) -> None:
        server = self.current.pop(port)
        started = self.started.pop(port, None)
        if started is None:
            return  # a kept server this session reused: its owner is --stop-servers
        say(f"stopping the server on port {port} (pid {server.pid}): {why}")
        procs.stop_group(server.pid, leader=server.proc)
        _forget(_state_path(port), {"scratch": str(server.scratch) if server.scratch else None})

    def finish(self, say: Say) -> None:
        """Session end: stop what this session started, or keep it (``--keep-servers``)."""
        for port, (server, plugin_dir) in list(self.started.items()):
            if self.keep and server.proc is not None and server.proc.poll() is None:
                _write_state(server, kept=True, plugin_dir=plugin_dir)
                say(
                    f"kept the server on port {port} (pid {server.pid}) for the next run; "
                    "stop it with: pytest --stop-servers"
                )
                self.started.pop(port)
                self.current.pop(port, None)
                continue
            self._stop_current(port, say, "session end")
        for port, server in list(self.current.items()):
            say(f"the server kept on port {port} (pid {server.pid}) stays up; stop it with: pytest --stop-servers")
            self.current.pop(port)
