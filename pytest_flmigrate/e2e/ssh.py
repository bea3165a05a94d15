"""SSH connections for the remote ground truth (paramiko): checked host keys, one-line errors.

Host keys are checked against ``known_hosts`` and an unknown or changed key is refused, unless
the ``--gt-config`` opts out explicitly (``insecure_skip_host_key_check``); then no key is
checked and nothing is written to any known_hosts file. Commands are strings for the remote
shell: build them with :func:`shlex.join` / :func:`shlex.quote` only.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from pytest_flmigrate.errors import FlmigrateError

TARGET = re.compile(
    r"^(?P<user>[A-Za-z0-9_][A-Za-z0-9_.-]*)@(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+))(?::(?P<port>\d{1,5}))?$"
)


@dataclass(frozen=True)
class SSHTarget:
    user: str
    host: str
    port: int = 22

    @classmethod
    def parse(cls, text: str) -> SSHTarget:
        """``USER@HOST[:PORT]`` (an IPv6 host in brackets: ``user@[::1]:2222``)."""
        match = TARGET.match(text.strip())
        port = int(match["port"]) if match and match["port"] else 22
        if not match or not 1 <= port <= 65535:
            raise FlmigrateError(f"--gt-ssh {text!r}: expected USER@HOST[:PORT], e.g. ubuntu@10.0.0.5:22")
        return cls(match["user"], match["ip6"] or match["host"], port)

    @property
    def url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def __str__(self) -> str:
        return f"{self.user}@{self.url_host}:{self.port}"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a host key."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode("ascii").rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, key: paramiko.PKey) -> None:
        super().__init__("host key not in known_hosts")
        self.key = key


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key):
        raise _UnknownHostKey(key)


class _AcceptWithoutSaving(paramiko.MissingHostKeyPolicy):
    """The explicit opt-out: accept any key, remember none."""

    def missing_host_key(self, client, hostname, key):
        return None


@dataclass(frozen=True)
class CommandResult:
    code: int
    out: str
    err: str


class Shell:
    """One SSH connection; runs commands (strings for the remote shell) and returns their output."""

    def __init__(self, client: paramiko.SSHClient, target: SSHTarget) -> None:
        self.client, self.target = client, target

    def run(self, command: str, timeout: float = 120.0) -> CommandResult:
        try:
            _, stdout, stderr = self.client.exec_command(command, timeout=timeout)
            out = stdout.read().decode("utf-8", "replace")
            err = stderr.read().decode("utf-8", "replace")
            code = stdout.channel.recv_exit_status()
        except TimeoutError:
            raise FlmigrateError(
                f"GT host {self.target}: a remote command did not finish within {timeout:.0f} s", command
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise FlmigrateError(f"GT host {self.target}: the SSH connection failed ({exc})", command) from None
        return CommandResult(code, out, err)

    def close(self) -> None:
        self.client.close()


def connect(
    target: SSHTarget,
    *,
    key_file: Path | None = None,
    known_hosts: Path | None = None,
    insecure: bool = False,
    timeout: float = 10.0,
) -> Shell:
    """An authenticated connection to ``target``, or one line saying why not and what to do."""
    where = f"GT host {target}"
    client = paramiko.SSHClient()
    known = (known_hosts or Path("~/.ssh/known_hosts")).expanduser()
    if insecure:
        client.set_missing_host_key_policy(_AcceptWithoutSaving())
    else:
        if known.is_file():
            try:
                client.load_system_host_keys(str(known))  # read-only: never written back
            except (OSError, ValueError, paramiko.SSHException) as exc:
                raise FlmigrateError(f"{where}: known_hosts file {known} is unreadable ({exc})") from None
        client.set_missing_host_key_policy(_RejectUnknown())
    key = key_file.expanduser() if key_file else None
    if key is not None and not key.is_file():
        raise FlmigrateError(f'{where}: key file {key} does not exist; fix "key_file" in --gt-config')
    try:
        client.connect(
            target.host,
            port=target.port,
            username=target.user,
            key_filename=str(key) if key else None,
            look_for_keys=key is None,
            allow_agent=key is None,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
        )
    except _UnknownHostKey as exc:
        client.close()
        scan = (
            f"ssh-keyscan -p {target.port} {target.host} >> {known}"
            if target.port != 22
            else f"ssh-keyscan {target.host} >> {known}"
        )
        raise FlmigrateError(
            f"{where}: host key not in {known} ({fingerprint(exc.key)}); refusing to connect. "
            f'Check the fingerprint, then add it ({scan}), or set "insecure_skip_host_key_check": true in --gt-config'
        ) from None
    except paramiko.BadHostKeyException as exc:
        client.close()
        name = f"[{target.host}]:{target.port}" if target.port != 22 else target.host
        raise FlmigrateError(
            f"{where}: host key does NOT match {known} (got {fingerprint(exc.key)}, expected "
            f"{fingerprint(exc.expected_key)}); refusing to connect. If the host was legitimately "
            f"re-keyed, remove the old entry (ssh-keygen -R '{name}' -f {known})"
        ) from None
    except paramiko.AuthenticationException:
        client.close()
        how = f"key {key}" if key else "the agent and default keys"
        raise FlmigrateError(
            f"{where}: authentication as {target.user} failed with {how}; authorize the key "
            f"(ssh-copy-id{' -i ' + str(key) if key else ''} -p {target.port} {target.user}@{target.host}) "
            'or fix "key_file" in --gt-config'
        ) from None
    except paramiko.ssh_exception.NoValidConnectionsError:
        client.close()
        raise FlmigrateError(
            f"{where}: connection refused; is sshd running there and is the port right (--gt-ssh)?"
        ) from None
    except socket.gaierror:
        client.close()
        raise FlmigrateError(f"{where}: unknown host; check the name in --gt-ssh") from None
    except TimeoutError:
        client.close()
        raise FlmigrateError(
            f"{where}: no answer within {timeout:.0f} s; check the address and firewall (--gt-ssh)"
        ) from None
    except paramiko.SSHException as exc:
        client.close()
        text = str(exc)
        # A peer that never speaks SSH: paramiko reports the banner wait, or, when its own
        # negotiation timer ran out first, a missing session.
        if any(needle in text for needle in ("banner", "No existing session", "Negotiation")):
            raise FlmigrateError(
                f"{where}: no SSH handshake within {timeout:.0f} s; is an SSH server listening on port {target.port}?"
            ) from None
        raise FlmigrateError(f"{where}: SSH failed ({text})") from None
    except OSError as exc:
        client.close()
        raise FlmigrateError(f"{where}: cannot connect ({exc.strerror or exc})") from None
    return Shell(client, target)
