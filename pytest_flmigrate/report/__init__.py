"""The run's outputs per model: ``summary.json`` and ``report.md`` (diffs are written in step 4)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.manifest import atomic_write
from pytest_flmigrate.report import e2e as e2e_report
from pytest_flmigrate.report import runtime as runtime_results
from pytest_flmigrate.run import ModelRun
from pytest_flmigrate.steps import STEPS

ICONS = {"passed": "✅", "failed": "❌", "skipped": "⏭", "blocked": "⛔", "not run": "·"}


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
        "findings": [finding.to_dict() for finding in run.review.result or ()],
        **runtime_results.summary_fields(run, earlier),  # tests, import_smoke, gpu, benchmark, server
        "e2e": run.e2e.summary(earlier.get("e2e")),
    }


def markdown(data: dict) -> str:
    """The final report of docs/procedure.md, filled from ``summary.json`` data."""
    placeholders = data["placeholders"]
    name = placeholders.get("MODEL_DISPLAY_NAME") or data["model"]
    lines = [f"# Migration: {name}", ""]
    lines += [
        f"- upstream: {data['upstream']['source']} ({data['upstream']['commit'] or data['upstream']['version']})",
        f"- pinned: vLLM {data['pinned']['version']}, transformers {data['pinned']['transformers']}"
        + (f" ({data['pinned']['transformers_source']})" if data["pinned"].get("transformers_source") else ""),
        "",
    ]
    if placeholders:
        lines += ["## Placeholders", ""] + [f"- `{key}`: {value}" for key, value in placeholders.items()]
        source = data.get("config_source")
        if source:
            where = f" ({source['class']} in {source['module']})" if source["class"] else ""
            lines.append(f"- config source: {source['kind']}{where}")
        lines.append("")
    lines += ["## Steps", "", "| step | name | outcome | reason |", "|---|---|---|---|"]
    for number, step in data["steps"].items():
        reason = step["reason"].splitlines()[0] if step["reason"] else ""
        lines.append(f"| {number} | {step['name']} | {ICONS.get(step['outcome'], '')} {step['outcome']} | {reason} |")
    lines.append("")
    if data["pattern"]:
        pattern = data["pattern"]
        lines += ["## Pattern", "", f"- {pattern['pattern']}, nearest plugin model: {pattern['nearest'] or 'none'}"]
        lines += [f"  - {item}" for item in pattern["evidence"]] + [""]
    if data["bridge"]:
        lines += [
            "## Config bridge",
            "",
            f"- {'created' if data['bridge']['needed'] else 'not needed'}: {data['bridge']['reason']}",
            "",
        ]
    if data["files"]:
        lines += ["## Files created/modified", ""]
        for f in data["files"]:
            reason = f": {f['reason']}" if f.get("reason") else ""
            lines.append(f"- `{f['path']}` ({f['role']}, {f['status']}){reason}")
            lines += [
                f"  - {patch_id} no longer applied: {why}" for patch_id, why in f.get("dropped_patches", {}).items()
            ]
            if f.get("adaptation"):
                lines.append(f"  - hand edits kept in `{f['adaptation']}`")
                lines += [f"  - replayed hunk `{hunk}`" for hunk in f["replayed"]]
            replaced = (
                "hand edits backed up before it was dropped" if f["status"] == "dropped" else "replaced by --force"
            )
            lines += [f"  - {replaced}; backup: `{f[key]}`" for key in ("backup", "adaptation_backup") if f.get(key)]
        if data["registration"] is not None:
            added = ", ".join(data["registration"]) or "already registered"
            shape = f"; register_model(): {data['registration_shape']}" if data.get("registration_shape") else ""
            lines.append(f"- `vllm_fl/__init__.py` (registration: {added}{shape})")
        lines.append("")
    if data["patches"]:
        lines += ["## Compatibility fixes applied", ""]
        lines += [f"- {patch_id}: {count} rewrite(s)" for patch_id, count in data["patches"].items()] + [""]
    if data["findings"]:
        lines += [f"## Review findings ({len(data['findings'])})", ""]
        lines += [
            f"- `{f['file']}:{f['line']}` [{f['check']}] {f['symbol']}: {f['message']} (fix: {f['fix']})"
            for f in data["findings"]
        ] + [""]
    lines += runtime_results.markdown_lines(data)
    lines += e2e_report.markdown_lines(data.get("e2e"))
    return "\n".join(lines)


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
        atomic_write(out / "report.md", markdown(data))
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
