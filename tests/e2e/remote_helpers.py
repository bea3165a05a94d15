"""Helpers of the remote-process tests: a shell that runs the remote commands here, and an
``http.server`` standing in for the GT process (lifecycle only, not a model server)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pytest_flmigrate.e2e.ssh import CommandResult, SSHTarget


class LocalShell:
    """Runs each command string with ``sh -c`` on this machine, as a remote login shell would."""

    target = SSHTarget("tester", "localhost", 22)

    def __init__(self) -> None:
        self.commands: list[str] = []

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        self.commands.append(command)
        proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=timeout)
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    def close(self) -> None:
        pass


def http_server_argv(port: int, directory: Path) -> list[str]:
    """``python -m http.server`` on 127.0.0.1:port serving ``directory`` (which holds ``health``)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "health").write_text("ok\n")
    return [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(directory), str(port)]


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
