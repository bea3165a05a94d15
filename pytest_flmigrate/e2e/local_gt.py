"""A ground-truth server started on this machine from an upstream env's python (``--gt-python``).

It runs ``PYTHON -m vllm.entrypoints.cli.main serve MODEL`` (``vllm serve``) bound to 127.0.0.1 on a free port, in a
session (process group) of its own, logging to a file; stop signals that group only.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_flmigrate.e2e import health
from pytest_flmigrate.e2e.serve import launcher, serve_argv
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.runtime import envs

# vLLM binds ZeroMQ IPC sockets under VLLM_RPC_BASE_PATH; a socket path holds at most 107 bytes,
# so that folder is a short one under the system temp folder, removed at stop.
RPC_PREFIX = "flmgt-rpc-"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalGT:
    """``python`` serving ``model``; logs to ``log_path``; temp and cache folders under ``scratch``."""

    def __init__(self, python: str, model: str, *, log_path: Path, scratch: Path, port: int | None = None,
                 tp: int = 1, serve_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 argv: Sequence[str] | None = None) -> None:
        self.python, self.model = python, model
        self.log_path, self.scratch = log_path, scratch
        self.port = port or free_port()
        self.argv = list(argv) if argv is not None else serve_argv(
            launcher(python), model=model, host="127.0.0.1", port=self.port, tp=tp, extra=serve_args)
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self.rpc_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """The environment of every vLLM run of the tool (``runtime.envs.vllm_env``), a short
        socket folder, then ``env``."""
        env = envs.vllm_env(self.scratch)
        if self.rpc_dir is None:
            self.rpc_dir = Path(tempfile.mkdtemp(prefix=RPC_PREFIX))
        env["VLLM_RPC_BASE_PATH"] = str(self.rpc_dir)
        return {**env, **self.extra_env}

    def start(self) -> int:
        python = Path(self.python).expanduser()
        if not (python.is_file() and os.access(python, os.X_OK)):
            raise FlmigrateError(f"--gt-python {self.python}: no such interpreter; pass the python of an env holding upstream vLLM")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.environment(), cwd=self.scratch, start_new_session=True,
            )
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_healthy(self, timeout: float = 600.0, interval: float = 1.0) -> float:
        return health.wait_healthy(self.url, timeout=timeout, label="GT", alive=self.alive,
                                   log_tail=self.log_tail, log_hint=str(self.log_path), interval=interval)

    def stop(self, grace: float = 15.0) -> str:
        """TERM the process group this object started, KILL what is left after ``grace`` seconds."""
        if self.process is None:
            return "not started by this run"
        group = self.process.pid  # start_new_session: the pid is the process group id
        deadline = time.monotonic() + grace
        _signal_group(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        while _group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        outcome = "stopped"
        if _group_alive(group):
            _signal_group(group, signal.SIGKILL)
            outcome = "killed"
        self.process.wait()
        self.process = None
        if self.rpc_dir is not None:
            shutil.rmtree(self.rpc_dir, ignore_errors=True)
            self.rpc_dir = None
        return outcome


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        pass


def _group_alive(group: int) -> bool:
    """Whether the group has a member that is not a zombie (an init that never reaps leaves zombies,
    which ``killpg(group, 0)`` still counts)."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(group) and fields[0] != "Z":
            return True
    return False
