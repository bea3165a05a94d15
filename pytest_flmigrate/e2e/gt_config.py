"""``--gt-config FILE``: how the ground-truth server is started over SSH (JSON, validated).

Keys (all optional)::

    {
      "key_file": "~/.ssh/id_ed25519",       private key for the SSH login (else agent / default keys)
      "known_hosts": "~/.ssh/known_hosts",   host keys checked against this file (the default)
      "insecure_skip_host_key_check": false, true: accept any host key (explicit opt-out, not advised)
      "connect_timeout": 10,                 seconds for TCP connect, SSH banner and authentication
      "docker_container": "vllm-gt",         run the server inside this running container (docker exec)
      "conda_env": "vllm-upstream",          run it in this conda env (conda run -n)
      "conda": "conda",                      the conda executable on the remote side
      "env": {"HF_HOME": "/data/hf"},        environment variables of the server
      "gpu_ids": [0, 1],                     CUDA_VISIBLE_DEVICES (a list or "0,1")
      "tp": 2,                               tensor parallel size (default: --tp)
      "serve_args": ["--dtype", "bfloat16"], extra server arguments (a list or one string)
      "python": "/opt/venv/bin/python",      server = PYTHON -m vllm.entrypoints.cli.main serve
      "command": ["vllm", "serve"],          ... or this command (exclusive with "python")
      "model": "/data/models/Kimi-K2.5",     weights on the remote side (default: --gt-model / --served-model)
      "host": "0.0.0.0",                     address the server binds on the remote side
      "port": 8122,                          its port
      "url": "http://gt-host:8122",          how this machine reaches it (default http://SSH_HOST:PORT)
      "state_dir": "/tmp/flmigrate-gt",      remote folder for the pid file and the log
      "health_timeout": 900                  seconds to wait for /health after the start
    }

Every value that reaches a remote command is quoted there (names and paths are untrusted);
this module only checks types and shapes.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from pytest_flmigrate.e2e.jsonfile import read_json
from pytest_flmigrate.errors import FlmigrateError

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")


@dataclass(frozen=True)
class GTConfig:
    key_file: Path | None = None
    known_hosts: Path = DEFAULT_KNOWN_HOSTS
    insecure_skip_host_key_check: bool = False
    connect_timeout: float = 10.0
    docker_container: str | None = None
    conda_env: str | None = None
    conda: str = "conda"
    env: dict[str, str] = field(default_factory=dict)
    gpu_ids: str | None = None
    tp: int | None = None
    serve_args: tuple[str, ...] = ()
    python: str | None = None
    command: tuple[str, ...] | None = None
    model: str | None = None
    host: str = "0.0.0.0"
    port: int = 8122
    url: str | None = None
    state_dir: str = "/tmp/flmigrate-gt"
    health_timeout: float = 900.0

    def server_env(self) -> dict[str, str]:
        """``env`` plus ``CUDA_VISIBLE_DEVICES`` from ``gpu_ids``."""
        env = dict(self.env)
        if self.gpu_ids is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu_ids
        return env


KEYS = tuple(GTConfig.__dataclass_fields__)


def load_gt_config(path: Path) -> GTConfig:
    """Read and validate ``path``; every problem is one line naming the file, the key and the fix."""
    where = f"--gt-config {path}"
    return parse_gt_config(read_json(path, where), where)


def parse_gt_config(data: object, where: str = "--gt-config") -> GTConfig:
    if not isinstance(data, dict):
        raise FlmigrateError(f"{where}: expected a JSON object of settings")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise FlmigrateError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(KEYS)}")
    values: dict[str, object] = {}

    def fail(key: str, expected: str) -> FlmigrateError:
        return FlmigrateError(f"{where}: {key!r} must be {expected}, got {data[key]!r}")

    for key, value in data.items():
        if value is None:
            continue
        if key in ("key_file", "known_hosts"):
            if not isinstance(value, str) or not value:
                raise fail(key, "a file path")
            values[key] = Path(value)
        elif key == "insecure_skip_host_key_check":
            if not isinstance(value, bool):
                raise fail(key, "true or false")
            values[key] = value
        elif key in ("connect_timeout", "health_timeout"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise fail(key, "a positive number of seconds")
            values[key] = float(value)
        elif key in ("tp", "port"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (key == "port" and value > 65535):
                raise fail(key, "a positive whole number" + (" up to 65535" if key == "port" else ""))
            values[key] = value
        elif key in ("docker_container", "conda_env", "conda", "python", "model", "host", "url", "state_dir"):
            if not isinstance(value, str) or not value.strip() or "\0" in value or "\n" in value:
                raise fail(key, "a non-empty one-line string")
            values[key] = value
        elif key == "env":
            if not isinstance(value, dict):
                raise fail(key, "an object of NAME: value")
            for name, item in value.items():
                if not ENV_NAME.match(name):
                    raise FlmigrateError(f"{where}: env name {name!r} is not a valid variable name")
                if not isinstance(item, (str, int, float)) or isinstance(item, bool) or "\0" in str(item):
                    raise FlmigrateError(f"{where}: env {name} must be a string or a number")
            values[key] = {name: str(item) for name, item in value.items()}
        elif key == "gpu_ids":
            values[key] = _gpu_ids(value, fail)
        elif key in ("serve_args", "command"):
            values[key] = _argv(value, key, fail)
    if values.get("python") and values.get("command"):
        raise FlmigrateError(f"{where}: give either 'python' or 'command', not both")
    if values.get("url"):
        from pytest_flmigrate.e2e.client import base_url

        values["url"] = base_url(str(values["url"]), f"{where}: 'url'")
    return GTConfig(**values)  # type: ignore[arg-type]


def _gpu_ids(value: object, fail) -> str:
    if isinstance(value, str) and re.fullmatch(r"\d+(,\d+)*", value.replace(" ", "")):
        return value.replace(" ", "")
    if (
        isinstance(value, list)
        and value
        and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)
    ):
        return ",".join(str(i) for i in value)
    raise fail("gpu_ids", 'a list of GPU numbers or a string such as "0,1"')


def _argv(value: object, key: str, fail) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            items = shlex.split(value)
        except ValueError:
            raise fail(key, "a list of arguments or a string with balanced quotes") from None
    elif isinstance(value, list) and all(
        isinstance(item, (str, int, float)) and not isinstance(item, bool) for item in value
    ):
        items = [str(item) for item in value]
    else:
        raise fail(key, "a list of arguments or one string")
    if any("\0" in item for item in items):
        raise fail(key, "arguments without NUL bytes")
    if key == "command" and not items:
        raise fail(key, "a non-empty command")
    return tuple(items)
