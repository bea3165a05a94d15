"""The runtime part of ``summary.json``: test counts, smoke, GPU, benchmark, server (report.md's sections of it:
report/markdown.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_flmigrate.run import ModelRun


def summary_fields(run: ModelRun, earlier: dict) -> dict:
    """``tests``, ``import_smoke``, ``gpu``, ``benchmark``, ``server``, ``tiny``, ``control``, ``phases``
    (seconds per phase of steps 9-11), ``draft`` (a draft's acceptance counts on the pin),
    ``runtime_env`` and ``notes`` of summary.json (``control``: ``served`` and the reason when not, once --tiny's
    upstream server was started; None when it never was). What this session did not compute keeps the value of ``earlier`` (the previous
    summary), marked ``"earlier_run": true`` (as the step outcomes are), so ``-k serve`` does not
    erase step 9's figures."""
    fields = _this_session(run)
    ran = set(run.steps)  # steps this session recorded (passed, failed, skipped or blocked)
    tests = dict(fields["tests"] or {})
    for name, step in TEST_STEPS.items():
        before = (earlier.get("tests") or {}).get(name)
        if name not in tests and step not in ran and isinstance(before, dict):
            tests[name] = {**before, "earlier_run": True}
    fields["tests"] = tests or None
    for key, steps in FIELD_STEPS.items():
        before = earlier.get(key)
        if fields[key] is None and not ran & steps and isinstance(before, dict):
            fields[key] = {**before, "earlier_run": True}
    return fields


#: The steps whose runs fill each part (a part a step did not run this session is carried over).
TEST_STEPS = {"baseline": 1, "regression": 7, "functional": 8}
FIELD_STEPS = {
    "import_smoke": {4, 5},
    "gpu": {9, 10},
    "benchmark": {9},
    "server": {10},
    "tiny": {9, 10, 11},
    "control": {9, 10, 11},
    "phases": {9, 10, 11},
    "draft": {11},
}


def _this_session(run: ModelRun) -> dict:
    runtime = run.started_runtime
    if runtime is None:
        return {
            "tests": None,
            "import_smoke": None,
            "gpu": None,
            "benchmark": None,
            "server": None,
            "tiny": None,
            "control": None,
            "phases": None,
            "draft": None,
            "runtime_env": None,
            "notes": [],
        }
    tests: dict = {}
    if (baseline := runtime.baseline.result) is not None:
        tests["baseline"] = baseline.as_dict()
    if (regression := runtime.regression.result) is not None:
        after, compared = regression
        tests["regression"] = {**after.as_dict(), **compared.as_dict()}
    if (functional := runtime.functional.result) is not None:
        tests["functional"] = functional.as_dict()
    smoke_result, resolution = runtime.import_smoke.result, runtime.resolution.result
    smoke = smoke_result or resolution
    served = runtime.server.result
    return {
        "tests": tests or None,
        "import_smoke": (
            {
                "imports": smoke_result.as_dict()["imports"] if smoke_result else None,
                "architectures": resolution.as_dict()["architectures"] if resolution else None,
                "platform": smoke.as_dict()["platform"],
            }
            if smoke
            else None
        ),
        "gpu": _as_dict(runtime.gpu.result),
        "benchmark": _as_dict(runtime.benchmark.result),
        "server": (
            {
                **served.as_dict(),
                "evidence": runtime.server_evidence(),
                "chat": runtime.chat.result,
                "pooling": runtime.pool.result,
            }
            if served is not None
            else None
        ),
        "tiny": _as_dict(runtime.tiny.result),
        "control": runtime.control_outcome,
        "phases": dict(runtime.phases) or None,
        "draft": runtime.draft_metrics,
        "runtime_env": _as_dict(runtime.probe.result),
        "notes": list(runtime.notes),
    }


def _as_dict(result) -> dict | None:
    """A step's result as summary.json holds it (None: the step did not run or failed)."""
    return result.as_dict() if result is not None else None
