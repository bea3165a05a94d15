"""The leader of every process group the tool starts (servers, benchmarks, the plugin's tests):
it runs the command as its child and ends the whole group when the run that started it dies,
even by SIGKILL, which no cleanup of the run can catch.

    python -I -S watchdog.py PARENT_PID GRACE ERROR_FD COMMAND...

Run by :func:`procs.start_group` as the group's leader (the standard library only, no site).
The kernel tells it when its parent dies (``PR_SET_PDEATHSIG``); then it sends the group
SIGTERM, waits up to GRACE seconds for the command to exit and sends the group SIGKILL, so no
member (the command's own children included) outlives the run, and says so in the log. Otherwise
it waits for the command and exits as the command did (its code, or its signal). SIGTERM to the
group (how the tool stops it) reaches the command; the watchdog itself waits for the command to
exit. A command that cannot be executed writes its errno to ERROR_FD, which the tool reads.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PARENT_DIED = signal.SIGUSR1


class ParentDied(Exception):
    pass


def _parent_died(signum: int, frame: object) -> None:
    raise ParentDied


def _end_group(child: int, parent: int, grace: float) -> None:
    print(
        f"flmigrate watchdog: the run that started this (pid {parent}) is gone; stopping process group {os.getpid()}",
        flush=True,
    )
    os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(child, os.WNOHANG)[0]:
                break
        except ChildProcessError:
            break
        time.sleep(0.1)
    os.killpg(0, signal.SIGKILL)  # what is left of the group, the watchdog last


def _exit_as(status: int) -> None:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # their action cannot be set (nor changed)
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code
    sys.exit(code)


def main(argv: list[str]) -> None:
    parent, grace, error_fd, command = int(argv[0]), float(argv[1]), int(argv[2]), argv[3:]
    os.set_inheritable(error_fd, False)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # the command decides; its exit ends this
    signal.signal(PARENT_DIED, _parent_died)
    signal.pthread_sigmask(signal.SIG_BLOCK, {PARENT_DIED})  # until the child is known
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, PARENT_DIED)
    if os.getppid() != parent:  # the parent died before the kernel was asked to tell
        sys.exit(1)
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(PARENT_DIED, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {PARENT_DIED})
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(error_fd, str(exc.errno or 0).encode())
        os._exit(127)
    os.close(error_fd)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {PARENT_DIED})
        _, status = os.waitpid(child, 0)
    except ParentDied:
        _end_group(child, parent, grace)
        return
    _exit_as(status)


if __name__ == "__main__":
    main(sys.argv[1:])
