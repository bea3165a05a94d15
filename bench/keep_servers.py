"""Wall time of a step-10-only run: first run (server start) versus a rerun that reuses a kept server.

    python bench/keep_servers.py [--select "serve"] [--rounds 1] [--json FILE]

Real vLLM 0.13.0 on CPU (the provisioned pinned env; scripts/provision-cpu-envs). Into a fresh
copy of the example plugin, installed into a layered env over the pinned env, ``mimo`` is migrated
from upstream (steps 2-5), with the tiny checkpoint (``--arch MiMoForCausalLM``). Then, per round:

  first   ``pytest --model mimo -k SELECT --keep-servers``   starts ``vllm serve`` and keeps it
  rerun   ``pytest --model mimo -k SELECT``                  finds it healthy and reuses it

and ``pytest --stop-servers`` ends it. Each figure is the wall time of the whole ``pytest`` command.
``--select e2e`` times step 11's local side instead (it needs a ground truth: pass ``--gt-url``
through ``--extra``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pytest_flmigrate import envs  # noqa: E402  (pure Python, no vLLM)
from pytest_flmigrate.envs import plugin_env  # noqa: E402
from pytest_flmigrate.servers import procs  # noqa: E402
from pytest_flmigrate.servers.cpu_args import CPU_ARGS_TEXT  # noqa: E402
from pytest_flmigrate.servers.ports import free_port  # noqa: E402

EXAMPLE = REPO / "examples" / "plugin-fl-mini"


def pytest_run(tree: Path, args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--select", default="serve", help="-k expression of the timed runs (default: serve)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--extra", default="", help="more pytest arguments for the timed runs")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    pinned = envs.env_python(envs.pinned_env())
    if pinned is None:
        sys.exit(envs.missing_env_reason(envs.pinned_env()))
    work = Path(tempfile.mkdtemp(prefix="flm-bench-keep-"))
    try:
        tree = work / "plugin"
        shutil.copytree(EXAMPLE, tree)
        python = plugin_env.plugin_env(pinned, tree, work / "env")
        checkpoint = work / "tiny-mimo"
        scratch = procs.scratch_dir("ckpt")
        subprocess.run(
            [
                str(pinned),
                str(envs.TINY_CHECKPOINT_SCRIPT),
                str(checkpoint),
                "--arch",
                "MiMoForCausalLM",
                "--model-type",
                "qwen2",
            ],
            env=envs.vllm_env(scratch),
            check=True,
            capture_output=True,
        )
        procs.remove_scratch(scratch)
        common = [
            "--model",
            "mimo",
            "--vllm-python",
            str(python),
            "--served-model",
            str(checkpoint),
            "--port",
            str(free_port()),
            f"--serve-args={CPU_ARGS_TEXT}",
            *shlex.split(args.extra),
        ]
        seconds, result = pytest_run(tree, common + ["-k", "step02 or step03 or step04 or step05"])
        if result.returncode != 0:
            print(result.stdout[-3000:], file=sys.stderr)
            sys.exit("steps 2-5 failed; see above")
        rounds = []
        for _ in range(args.rounds):
            first, one = pytest_run(tree, common + ["-k", args.select, "--keep-servers"])
            rerun, two = pytest_run(tree, common + ["-k", args.select])
            stop, _ = pytest_run(tree, ["--stop-servers"])
            for result in (one, two):
                if result.returncode != 0:
                    print(result.stdout[-3000:], file=sys.stderr)
                    sys.exit("a timed run failed; see above")
            reused = "reusing the server kept on port" in two.stdout
            rounds.append(
                {
                    "first_seconds": round(first, 1),
                    "rerun_seconds": round(rerun, 1),
                    "reused": reused,
                    "stop_seconds": round(stop, 1),
                }
            )
        print(f"{'round':>5}  {'first (start, keep)':>20}  {'rerun (reuse)':>14}  {'reused':>6}  {'speedup':>7}")
        for number, data in enumerate(rounds, 1):
            print(
                f"{number:>5}  {data['first_seconds']:>19.1f}s  {data['rerun_seconds']:>13.1f}s  "
                f"{str(data['reused']):>6}  {data['first_seconds'] / data['rerun_seconds']:>6.1f}x"
            )
        if args.json:
            args.json.write_text(json.dumps({"select": args.select, "rounds": rounds}, indent=2) + "\n")
        return 0 if all(data["reused"] for data in rounds) else 1
    finally:
        if (work / "plugin").is_dir():
            pytest_run(work / "plugin", ["--stop-servers"])  # nothing kept outlives the benchmark
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
