"""A process on another machine, over SSH, and the remote ground-truth server built on it.

:class:`RemoteProcess` starts a command with ``nohup`` in a session (process group) of its own,
records its pid in a pid file under a state folder, and answers status, logs and stop. Stop
signals only the process group of the pid this object started, after checking that the pid
file still names it and that the process is the same one (its start time in ``/proc``); it
never kills by name. With ``docker_container`` every command runs inside that container
(``docker exec``). Each remote command is one POSIX ``sh -c`` script whose every variable part
is :func:`shlex.quote`-d, passed as a single quoted argument: names and paths are untrusted.

:class:`RemoteGT` builds the GT server's argv (conda, env vars, GPU ids, TP, serve args), starts
it through a :class:`RemoteProcess`, waits for ``/health`` (bounded) and stops it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_flmigrate.e2e.gt_config import ENV_NAME, GTConfig
from pytest_flmigrate.e2e.serve import launcher, serve_argv
from pytest_flmigrate.e2e.ssh import Shell, SSHTarget, connect
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers import health

q = shlex.quote
# Start time of a pid (field 22 of /proc/PID/stat; the command name may hold spaces, so cut after ") ").
START_TIME = "sed 's/^.*) //' /proc/\"$1\"/stat 2>/dev/null | cut -d' ' -f20"
STATE = "sed 's/^.*) //' /proc/\"$1\"/stat 2>/dev/null | cut -d' ' -f1"
# Whether a process group has a member that is not a zombie (kill -0 counts zombies, which a
# container's init may never reap). After ") " in /proc/PID/stat: state, ppid, pgrp.
GROUP_ALIVE = """group_alive() {
  for f in /proc/[0-9]*/stat; do
    { read -r line < "$f"; } 2>/dev/null || continue
    set -- ${line##*) }
    [ "$3" = "$g" ] && [ "$1" != Z ] && return 0
  done
  return 1
}"""


@dataclass(frozen=True)
class Started:
    """What ``start`` launched: the pid (also the process group id) and its start time token."""

    pid: int
    start_time: str


class RemoteProcess:
    """One named process under ``state_dir`` on the far side of ``shell``."""

    def __init__(
        self, shell: Shell, state_dir: str, name: str = "gt-server", docker_container: str | None = None
    ) -> None:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"process name {name!r}: letters, digits, '-' and '_' only")
        self.shell, self.state_dir, self.name, self.docker = shell, state_dir.rstrip("/") or "/", name, docker_container
        self.pid_file = f"{self.state_dir}/{name}.pid"
        self.log_file = f"{self.state_dir}/{name}.log"
        self.started: Started | None = None

    def command(self, script: str) -> str:
        """The remote command line running ``script`` with sh (inside the container, if any)."""
        argv = ["sh", "-c", script]
        if self.docker:
            argv = ["docker", "exec", self.docker, *argv]
        return shlex.join(argv)

    def _run(self, script: str, timeout: float = 60.0):
        return self.shell.run(self.command(script), timeout=timeout)

    def _functions(self) -> str:
        return f"start_time() {{ {START_TIME}; }}\nproc_state() {{ {STATE}; }}\n{GROUP_ALIVE}\n"

    def start_script(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
        bad = [name for name in env or () if not ENV_NAME.match(name)]
        if bad:
            raise FlmigrateError(f"environment variable name(s) {', '.join(map(repr, bad))}: not valid names")
        command = shlex.join([*(["env", *(f"{k}={v}" for k, v in env.items())] if env else []), *argv])
        pid, log, state = q(self.pid_file), q(self.log_file), q(self.state_dir)
        return (
            self._functions()
            + "command -v setsid >/dev/null 2>&1 || { echo nosetsid; exit 5; }\n"
            + f"mkdir -p {state} || exit 6\n"
            + f'if [ -s {pid} ] && kill -0 "$(cat {pid})" 2>/dev/null; then echo "busy $(cat {pid})"; exit 3; fi\n'
            + f"rm -f {pid}\n"
            + f"cd {state} || exit 6\n"
            # The inner sh is the new session's leader: its pid is the process group id; it
            # writes that pid, then execs the command (same pid).
            + f'nohup setsid sh -c \'echo $$ > "$0"; exec "$@"\' {pid} {command} > {log} 2>&1 < /dev/null &\n'
            + "i=0\n"
            + f"while [ ! -s {pid} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n"
            + f"[ -s {pid} ] || {{ echo nopid; exit 4; }}\n"
            + f"p=$(cat {pid})\n"
            + 'echo "started $p $(start_time "$p")"\n'
        )

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Started:
        """Launch ``argv`` (with ``env``) detached; refuses when the pid file names a live process."""
        result = self._run(self.start_script(argv, env))
        words = result.out.split()
        where = f"GT host {self.shell.target}"
        if result.code == 3 and words[:1] == ["busy"]:
            raise FlmigrateError(
                f"{where}: a process started earlier (pid {words[1]}, {self.pid_file}) is still running; "
                "this run leaves it alone: stop it yourself, or point --gt-url at it if it is a healthy GT server"
            )
        if result.code == 5:
            raise FlmigrateError(
                f"{where}: setsid is not installed{' in container ' + self.docker if self.docker else ''}; install util-linux"
            )
        if result.code != 0 or words[:1] != ["started"] or len(words) < 2:
            raise FlmigrateError(
                f"{where}: could not start the process (exit {result.code}); see {self.log_file} there",
                (result.out + result.err).strip(),
            )
        self.started = Started(int(words[1]), words[2] if len(words) > 2 else "")
        return self.started

    def status(self) -> str:
        """``running``, ``exited`` (what this object started is gone), ``replaced`` (the pid file
        names another process now) or ``absent`` (no pid file)."""
        expected = self.started
        pid = q(self.pid_file)
        script = self._functions() + (f"[ -s {pid} ] || {{ echo absent; exit 0; }}\np=$(cat {pid})\n")
        if expected is not None:
            script += f'[ "$p" = {expected.pid} ] || {{ echo replaced; exit 0; }}\n'
        script += (
            'if kill -0 "$p" 2>/dev/null && [ "$(proc_state "$p")" != Z ]; then\n'
            + (
                f'  [ "$(start_time "$p")" = {q(expected.start_time)} ] || {{ echo replaced; exit 0; }}\n'
                if expected and expected.start_time
                else ""
            )
            + "  echo running\nelse\n  echo exited\nfi\n"
        )
        result = self._run(script)
        state = result.out.strip()
        if result.code != 0 or state not in ("running", "exited", "replaced", "absent"):
            raise FlmigrateError(
                f"GT host {self.shell.target}: status check failed (exit {result.code})", result.out + result.err
            )
        return state

    def logs(self, lines: int = 50) -> str:
        result = self._run(
            f"tail -n {int(lines)} {q(self.log_file)} 2>/dev/null || echo '(no log at '{q(self.log_file)}')'"
        )
        return result.out

    def stop(self, grace: float = 15.0) -> str:
        """Stop the process group this object started: TERM, then KILL after ``grace`` seconds.

        Returns ``stopped``, ``killed``, ``not running`` or ``left alone: ...`` (the pid file
        names another process, or the pid was reused); never signals anything else.
        """
        if self.started is None:
            return "not started by this run"
        pid, group, token = q(self.pid_file), self.started.pid, q(self.started.start_time)
        script = self._functions() + (
            f"p=$(cat {pid} 2>/dev/null || true)\n"
            f'[ "$p" = {group} ] || {{ echo "other ${{p:-none}}"; exit 0; }}\n'
            f'if kill -0 {group} 2>/dev/null && [ -n {token} ] && [ "$(start_time {group})" != {token} ]; then echo reused; exit 0; fi\n'
            f"g={group}\n"
            f"group_alive || {{ rm -f {pid}; echo 'not running'; exit 0; }}\n"
            f"kill -TERM -{group} 2>/dev/null || true\n"
            "i=0\n"
            f"while group_alive && [ $i -lt {max(1, int(grace * 10))} ]; do sleep 0.1; i=$((i+1)); done\n"
            f"if group_alive; then kill -KILL -{group} 2>/dev/null || true; echo killed; else echo stopped; fi\n"
            f"rm -f {pid}\n"
        )
        result = self._run(script, timeout=grace + 60)
        words = result.out.split()
        if result.code != 0 or not words:
            raise FlmigrateError(
                f"GT host {self.shell.target}: stop failed (exit {result.code})", result.out + result.err
            )
        if words[0] == "other":
            return f"left alone: {self.pid_file} now names pid {words[1]}, not the {group} this run started"
        if words[0] == "reused":
            return f"left alone: pid {group} now belongs to another process"
        self.started = None if words[0] in ("stopped", "killed", "not") else self.started
        return result.out.strip()


def gt_argv(config: GTConfig, *, model: str, tp: int) -> list[str]:
    """The remote GT server's argv, with ``conda run`` in front when a conda env is configured."""
    argv = serve_argv(
        launcher(config.python, config.command),
        model=model,
        host=config.host,
        port=config.port,
        tp=config.tp or tp,
        extra=config.serve_args,
    )
    if config.conda_env:
        argv = [config.conda, "run", "--no-capture-output", "-n", config.conda_env, *argv]
    return argv


class RemoteGT:
    """The ground-truth server on ``target``, per ``config``: start, wait for health, status, logs, stop."""

    def __init__(self, target: SSHTarget, config: GTConfig, *, model: str, tp: int = 1) -> None:
        self.target, self.config, self.model, self.tp = target, config, model, tp
        self.shell: Shell | None = None
        self.process: RemoteProcess | None = None

    @property
    def url(self) -> str:
        return self.config.url or f"http://{self.target.url_host}:{self.config.port}"

    def connect(self) -> RemoteProcess:
        if self.process is None:
            config = self.config
            self.shell = connect(
                self.target,
                key_file=config.key_file,
                known_hosts=config.known_hosts,
                insecure=config.insecure_skip_host_key_check,
                timeout=config.connect_timeout,
            )
            self.process = RemoteProcess(self.shell, config.state_dir, "gt-server", config.docker_container)
        return self.process

    def argv(self) -> list[str]:
        return gt_argv(self.config, model=self.model, tp=self.tp)

    def start(self) -> Started:
        return self.connect().start(self.argv(), self.config.server_env())

    def wait_healthy(self, timeout: float | None = None, interval: float = 2.0) -> float:
        process = self.connect()
        return health.wait_healthy(
            self.url,
            timeout=self.config.health_timeout if timeout is None else timeout,
            label="GT",
            alive=lambda: process.status() == "running",
            log_tail=lambda: process.logs(40),
            log_hint=f"{process.log_file} on {self.target.host}",
            interval=interval,
        )

    def status(self) -> str:
        return self.connect().status()

    def logs(self, lines: int = 50) -> str:
        return self.connect().logs(lines)

    def stop(self) -> str:
        if self.process is None:
            return "not started by this run"
        return self.process.stop()

    def close(self) -> None:
        if self.shell is not None:
            self.shell.close()
