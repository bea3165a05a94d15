"""Processes the run starts: each in its own process group, logged to a file, stopped by group,
and stopped with the run that started it, however it ends (a watchdog leads each group).

Nothing here stops a process by name. A group is "alive" while it has a member that is not a
zombie (in a container whose PID 1 does not reap, orphaned members linger as zombies, which hold
no resources and cannot be signalled away).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate import progress
from pytest_flmigrate.errors import FlmigrateError

#: Lines of a log shown in a failure message.
TAIL_LINES = 40
#: The leader of every group :func:`start_group` starts, and the seconds it gives the command to
#: exit on SIGTERM once the run that started it is gone.
WATCHDOG = Path(__file__).with_name("watchdog.py")
WATCHDOG_GRACE = 30.0


SCRATCH_ROOT = Path("/tmp")
SCRATCH_PREFIX = "flm-"


def scratch_dir(prefix: str) -> Path:
    """A fresh folder under /tmp for one process's TMPDIR, sockets and caches.

    Kept short on purpose: vLLM puts Unix sockets under it (108-byte path limit).
    """
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{prefix}-", dir=SCRATCH_ROOT))


def remove_scratch(path: Path | None) -> None:
    """Remove a folder :func:`scratch_dir` made; any other path (a state file may name one) is left alone."""
    if path is not None and path.parent == SCRATCH_ROOT and path.name.startswith(SCRATCH_PREFIX):
        shutil.rmtree(path, ignore_errors=True)


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file ("" when it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data[data.rfind(")") + 2 :].split()


def running(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot): with the pid, names one process over time."""
    stat = _stat(pid)
    return None if stat is None else int(stat[19])


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat and int(stat[2]) == pgid and stat[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return sorted(members)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return bool(group_members(pgid))


def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _wait_gone(pgid: int, seconds: float, leader: subprocess.Popen | None) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if leader is not None:
            leader.poll()  # reap it, or it lingers as a zombie member
        if not group_members(pgid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def stop_group(pgid: int, *, grace: float = 30.0, leader: subprocess.Popen | None = None) -> str:
    """SIGTERM process group ``pgid``; SIGKILL what is left after ``grace`` seconds.

    Returns once no live member remains: ``stopped``, or ``killed`` when SIGKILL was needed.
    ``leader`` (when this process started it) is reaped.
    """
    outcome = "stopped"
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        if sig == signal.SIGKILL:
            outcome = "killed"
        if _wait_gone(pgid, wait, leader):
            break
    if leader is not None:
        try:
            leader.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
            pass
    return outcome


def start_group(
    command: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path, outlive: bool = False
) -> subprocess.Popen:
    """Start ``command`` in a new process group, stdout+stderr to ``log``.

    The group's leader is the watchdog (servers/watchdog.py), which runs ``command`` and ends
    the group when this process dies, even by SIGKILL; ``outlive`` (a server kept for later runs)
    starts ``command`` itself as the leader instead. A command that cannot be executed is one
    FlmigrateError.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        out.write(("$ " + " ".join(command) + "\n").encode())
        out.flush()
        if outlive:
            return _popen(list(command), command[0], env=env, cwd=cwd, out=out)
        errors, error_fd = os.pipe()
        try:
            argv = [sys.executable, "-I", "-S", str(WATCHDOG), str(os.getpid()), str(WATCHDOG_GRACE), str(error_fd)]
            proc = _popen([*argv, *command], command[0], env=env, cwd=cwd, out=out, pass_fds=(error_fd,))
        finally:
            os.close(error_fd)
        with os.fdopen(errors, "rb") as reader:
            failed = reader.read()  # empty once the command is running: the pipe closes on exec
    if failed:
        proc.wait()
        raise FlmigrateError(f"cannot run {command[0]}: {os.strerror(int(failed))}")
    return proc


def _popen(
    argv: list[str], program: str, *, env: Mapping[str, str], cwd: Path, out, pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen:
    try:
        return subprocess.Popen(
            argv,
            env=dict(env),
            cwd=str(cwd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=pass_fds,
        )
    except OSError as exc:
        raise FlmigrateError(f"cannot run {program}: {exc.strerror}") from None


@dataclass(frozen=True)
class Finished:
    returncode: int
    seconds: float
    log: Path


def run_logged(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    timeout: float,
    what: str,
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> Finished:
    """Run ``command`` to the end in its own process group; nothing of it outlives the call.

    A run longer than ``timeout`` seconds is stopped and raises one line with the log's tail. A
    long one says how far along it is (``what``, the time so far, the log's last line).
    """
    start = time.monotonic()
    proc = start_group(command, env=env, cwd=cwd, log=log)
    if on_start is not None:
        on_start(proc)
    ticker = progress.Ticker(what, lambda: progress.last_line(tail(log, 5)))
    try:
        returncode = _wait(proc, start + timeout, ticker)
    except subprocess.TimeoutExpired:
        stop_group(proc.pid, leader=proc)
        raise FlmigrateError(
            f"{what} did not finish within {timeout:.0f} s and was stopped (log: {log})", tail(log)
        ) from None
    except BaseException:
        stop_group(proc.pid, leader=proc)
        raise
    ticker.done()
    if group_members(proc.pid):  # children the command left behind
        stop_group(proc.pid, grace=10)
    return Finished(returncode, time.monotonic() - start, log)


def _wait(proc: subprocess.Popen, deadline: float, ticker: progress.Ticker) -> int:
    """``proc``'s exit status, its ticker told how far along it is meanwhile; TimeoutExpired at
    ``deadline``."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired(proc.args, 0)
        try:
            return proc.wait(timeout=min(left, progress.HEARTBEAT_SECONDS))
        except subprocess.TimeoutExpired:
            ticker.tick()
