"""The run's outputs per model: ``summary.json`` and ``report.md`` (report/markdown.py; diffs are written
in step 4)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.layout import CATALOG_SOURCE
from pytest_flmigrate.manifest import atomic_write
from pytest_flmigrate.report import markdown
from pytest_flmigrate.report import runtime as runtime_results
from pytest_flmigrate.run import ModelRun
from pytest_flmigrate.steps import STEPS


def summary(run: ModelRun, earlier: dict) -> dict:
    """The summary.json contract (docs/reports-and-ci.md), from whatever the run got to (``earlier``: the
    previous summary.json, whose runtime parts this session did not compute are kept)."""
    workspace = run.workspace
    unit = run.unit.result
    upstream_tree = workspace.upstream.result
    pinned = workspace.pinned.result
    files = run.migration.result
    pattern = run.pattern.result
    plan = run.plan.result
    registration = run.registration.result
    patches: dict[str, int] = {}
    for result in files or ():
        for patch_id, count in result.patches.items():
            patches[patch_id] = patches.get(patch_id, 0) + count
    return {
        "model": run.name,
        "placeholders": unit.placeholders() if unit else {},
        "evidence": unit.evidence if unit else {},
        "config_source": unit.config_source() if unit else None,
        "upstream": {
            "source": workspace.settings.upstream,
            "version": upstream_tree.version if upstream_tree else None,
            "commit": upstream_tree.commit if upstream_tree else None,
        },
        "pinned": {
            "version": pinned.vllm.version if pinned else None,
            "transformers": pinned.transformers.version if pinned else None,
            "transformers_source": pinned.transformers_source if pinned else None,
        },
        "steps": {
            str(number): {
                "name": step.name,
                **(
                    {"outcome": record.outcome, "reason": record.reason, "seconds": round(record.seconds, 2)}
                    if (record := run.steps.get(number))
                    else {"outcome": "not run", "reason": "", "seconds": 0}
                ),
            }
            for number, step in STEPS.items()
        },
        "pattern": (
            {"pattern": pattern.pattern, "nearest": pattern.nearest, "evidence": list(pattern.evidence)}
            if pattern
            else None
        ),
        "bridge": {"needed": plan.bridge is not None, "reason": plan.bridge_reason} if plan else None,
        "files": [
            {
                "path": r.target,
                "role": r.role,
                "status": r.status,
                "sha256": r.sha256,
                "patches": r.patches,
                **({"backup": r.backup} if r.backup else {}),
                **({"adaptation_backup": r.adaptation_backup} if r.adaptation_backup else {}),
                **({"adaptation": r.adaptation, "replayed": list(r.replayed)} if r.adaptation else {}),
                **({"reason": r.reason} if r.reason else {}),
                **({"dropped_patches": dict(r.dropped_patches)} if r.dropped_patches else {}),
            }
            for r in files or ()
        ],
        "registration": (
            [*registration.added, *(f"removed {statement}" for statement in registration.removed)]
            if registration
            else None
        ),
        "registration_shape": registration.shape if registration else None,
        "patches": dict(sorted(patches.items())),
        "local_patches": [
            {
                "id": patch.id,
                "name": patch.name,
                "source": patch.source,
                "summary": patch.summary,
                "rewrites": patches.get(patch.id, 0),
            }
            for patch in run.workspace.patches.result or ()
            if patch.source != CATALOG_SOURCE
        ],
        "findings": [finding.to_dict() for finding in run.review.result or ()],
        **runtime_results.summary_fields(run, earlier),  # tests, import_smoke, gpu, benchmark, server
        "e2e": run.e2e.summary(earlier.get("e2e")),
    }


@dataclass(frozen=True)
class ModelReport:
    """One model's summary and where it went; ``error`` says why it could not be written."""

    data: dict
    folder: Path
    error: str | None = None

    def terminal_lines(self) -> list[str]:
        """The step line, then the report (or why there is none), every file dropped and every backup."""
        lines = [terminal_line(self.data)]
        if self.error:
            lines.append(f"  report not written: {self.error}")
        else:
            lines.append(f"  report: {self.folder / 'report.md'}")
        for entry in self.data.get("files", ()):
            if entry["status"] == "dropped":
                lines.append(f"  dropped {entry['path']}: {entry.get('reason', '')}")
            done = "dropped" if entry["status"] == "dropped" else "--force replaced"
            for key in ("backup", "adaptation_backup"):
                if entry.get(key):
                    lines.append(f"  {done} {entry['path']}; backup in the plugin checkout: {entry[key]}")
        return lines


def write_reports(run: ModelRun) -> ModelReport:
    """Write summary.json and report.md; steps this session did not run keep their last result.

    A folder that cannot be written is the report's ``error``, not an exception: the terminal
    summary still shows the steps."""
    out = run.report_dir
    earlier = _earlier_summary(out)
    data = summary(run, earlier)
    earlier_steps = earlier.get("steps", {})
    for number, step in data["steps"].items():
        if step["outcome"] == "not run" and earlier_steps.get(number, {}).get("outcome", "not run") != "not run":
            data["steps"][number] = {**earlier_steps[number], "earlier_run": True}
    try:
        atomic_write(out / "summary.json", json.dumps(data, indent=2, default=str) + "\n")
        atomic_write(out / "report.md", markdown.render(data))
    except FlmigrateError as exc:
        return ModelReport(data, out, exc.message)
    return ModelReport(data, out)


def _earlier_summary(out: Path) -> dict:
    """The previous summary.json of this report folder; {} when there is none or it is unreadable."""
    try:
        data = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def terminal_line(data: dict) -> str:
    """``qwen3_5: 2 upstream passed | 3 patterns passed | ...`` from summary.json data."""
    parts = [
        f"{number} {STEPS[int(number)].short} {step['outcome']}"
        for number, step in data["steps"].items()
        if step["outcome"] != "not run"
    ]
    return f"{data['model']}: " + " | ".join(parts)
