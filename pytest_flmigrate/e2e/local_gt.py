"""A ground-truth server started on this machine from an upstream env's python (``--gt-python``).

It runs ``PYTHON -m vllm.entrypoints.cli.main serve MODEL`` (``vllm serve``) bound to 127.0.0.1 on
a free port, in a process group of its own (servers/procs.py: its watchdog ends it with the run),
logging to a file; stop signals that group only.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_flmigrate import envs
from pytest_flmigrate.e2e.serve import launcher, serve_argv
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers import health, ports, procs


class LocalGT:
    """``python`` serving ``model``; logs to ``log_path``; temp and cache folders under ``scratch``."""

    def __init__(
        self,
        python: str,
        model: str,
        *,
        log_path: Path,
        scratch: Path,
        port: int | None = None,
        tp: int = 1,
        serve_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        argv: Sequence[str] | None = None,
    ) -> None:
        self.python, self.model = python, model
        self.log_path, self.scratch = log_path, scratch
        self.port = port or ports.free_port()
        self.argv = (
            list(argv)
            if argv is not None
            else serve_argv(launcher(python), model=model, host="127.0.0.1", port=self.port, tp=tp, extra=serve_args)
        )
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self.rpc_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """The environment of every vLLM run of the tool (``envs.vllm_env``), a short
        socket folder, then ``env``."""
        env = envs.vllm_env(self.scratch)
        if self.rpc_dir is None:  # vLLM's sockets: a short folder (procs.scratch_dir), removed at stop
            self.rpc_dir = procs.scratch_dir("gt-rpc")
        env["VLLM_RPC_BASE_PATH"] = str(self.rpc_dir)
        return {**env, **self.extra_env}

    def start(self) -> int:
        python = Path(self.python).expanduser()
        if not (python.is_file() and os.access(python, os.X_OK)):
            raise FlmigrateError(
                f"--gt-python {self.python}: no such interpreter; pass the python of an env holding upstream vLLM"
            )
        self.process = procs.start_group(self.argv, env=self.environment(), cwd=self.scratch, log=self.log_path)
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return procs.tail(self.log_path, lines)

    def wait_healthy(self, timeout: float = 600.0, interval: float = 1.0) -> float:
        return health.wait_healthy(
            self.url,
            timeout=timeout,
            label="GT",
            alive=self.alive,
            log_tail=self.log_tail,
            log_hint=str(self.log_path),
            interval=interval,
        )

    def stop(self, grace: float = 15.0) -> str:
        """TERM the process group this object started, KILL what is left after ``grace`` seconds:
        ``stopped`` or ``killed``."""
        if self.process is None:
            return "not started by this run"
        outcome = procs.stop_group(self.process.pid, grace=grace, leader=self.process)
        self.process = None
        procs.remove_scratch(self.rpc_dir)
        self.rpc_dir = None
        return outcome
