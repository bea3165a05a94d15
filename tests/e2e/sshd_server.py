"""A real OpenSSH server on loopback for the remote tests: started by the ``sshd`` fixture as the
current user, on 127.0.0.1 with a non-default port, a fresh host key and an authorized key
made here. Nothing is installed: without sshd the fixture skips, naming scripts/ci-services."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_flmigrate.e2e.ssh import SSHTarget
from pytest_flmigrate.servers.ports import free_port
from tests.fixtures.missing import skip_or_fail


def find_sshd() -> str | None:
    found = shutil.which("sshd")
    if found:
        return found
    return next((path for path in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.access(path, os.X_OK)), None)


@dataclass(frozen=True)
class SSHServer:
    port: int
    user: str
    client_key: Path
    other_key: Path  # a key sshd does not accept
    known_hosts: Path  # the right host key
    wrong_known_hosts: Path  # another key for the same [host]:port
    empty_known_hosts: Path
    log: Path

    @property
    def target(self) -> SSHTarget:
        return SSHTarget(self.user, "127.0.0.1", self.port)


def keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "flmigrate-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().split()[0:2]


def wait_for_banner(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    binary = find_sshd()
    if binary is None:
        skip_or_fail("sshd not installed: run scripts/ci-services (installs openssh-server)")
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed: run scripts/ci-services")
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        pytest.skip("sshd run as root needs /run/sshd (privilege separation): run scripts/ci-services")
    home = tmp_path_factory.mktemp("sshd")
    host_type, host_key = keygen(home / "host_key")
    other_type, other_host_key = keygen(home / "other_host_key")
    keygen(home / "client_key")
    keygen(home / "other_key")
    (home / "authorized_keys").write_text((home / "client_key.pub").read_text())
    port = free_port()
    (home / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_type} {host_key}\n")
    (home / "wrong_known_hosts").write_text(f"[127.0.0.1]:{port} {other_type} {other_host_key}\n")
    (home / "empty_known_hosts").write_text("")
    config = home / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {home / 'host_key'}",
                f"PidFile {home / 'sshd.pid'}",
                f"AuthorizedKeysFile {home / 'authorized_keys'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    log = home / "sshd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "-D", "-e", "-f", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        if not wait_for_banner(port, proc):
            pytest.fail(f"sshd did not come up on 127.0.0.1:{port}:\n{log.read_text()}")
        yield SSHServer(
            port,
            getpass.getuser(),
            home / "client_key",
            home / "other_key",
            home / "known_hosts",
            home / "wrong_known_hosts",
            home / "empty_known_hosts",
            log,
        )
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
