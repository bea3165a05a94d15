"""report.md, the final report of docs/procedure.md, from summary.json's data.

One assembler (:func:`render`) over :data:`SECTIONS`: each a title and a body read from the data,
left out when its body is empty. A new part of the report is one more entry there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pytest_flmigrate.tiny import drafts

ICONS = {"passed": "✅", "failed": "❌", "skipped": "⏭", "blocked": "⛔", "not run": "·"}
#: The E2E prompt kinds and their labels in the report.
E2E_KINDS = (("text", "text"), ("multimodal", "mm"))


@dataclass(frozen=True)
class Section:
    """``## title`` and its body; ``title`` may read the data (a count)."""

    title: str | Callable[[dict], str]
    body: Callable[[dict], list[str]]

    def lines(self, data: dict) -> list[str]:
        body = self.body(data)
        if not body:
            return []
        title = self.title(data) if callable(self.title) else self.title
        return [f"## {title}", "", *body, ""]


def render(data: dict) -> str:
    """report.md's text: the title and where the trees came from, then every section that has a body."""
    name = data["placeholders"].get("MODEL_DISPLAY_NAME") or data["model"]
    upstream, pinned = data["upstream"], data["pinned"]
    lines = [
        f"# Migration: {name}",
        "",
        f"- upstream: {upstream['source']} ({upstream['commit'] or upstream['version']})",
        f"- pinned: vLLM {pinned['version']}, transformers {pinned['transformers']}"
        + (f" ({pinned['transformers_source']})" if pinned.get("transformers_source") else ""),
        "",
    ]
    for section in SECTIONS:
        lines += section.lines(data)
    return "\n".join(lines)


# --- the static steps ---------------------------------------------------------------------------


def placeholders(data: dict) -> list[str]:
    lines = [f"- `{key}`: {value}" for key, value in data["placeholders"].items()]
    source = data.get("config_source")
    if lines and source:
        where = f" ({source['class']} in {source['module']})" if source["class"] else ""
        lines.append(f"- config source: {source['kind']}{where}")
    return lines


def steps(data: dict) -> list[str]:
    lines = ["| step | name | outcome | reason |", "|---|---|---|---|"]
    for number, step in data["steps"].items():
        reason = step["reason"].splitlines()[0] if step["reason"] else ""
        lines.append(f"| {number} | {step['name']} | {ICONS.get(step['outcome'], '')} {step['outcome']} | {reason} |")
    return lines


def pattern(data: dict) -> list[str]:
    found = data["pattern"]
    if not found:
        return []
    return [f"- {found['pattern']}, nearest plugin model: {found['nearest'] or 'none'}"] + [
        f"  - {item}" for item in found["evidence"]
    ]


def bridge(data: dict) -> list[str]:
    plan = data["bridge"]
    return [f"- {'created' if plan['needed'] else 'not needed'}: {plan['reason']}"] if plan else []


def files(data: dict) -> list[str]:
    if not data["files"]:
        return []
    lines = []
    for entry in data["files"]:
        reason = f": {entry['reason']}" if entry.get("reason") else ""
        lines.append(f"- `{entry['path']}` ({entry['role']}, {entry['status']}){reason}")
        lines += [
            f"  - {patch_id} no longer applied: {why}" for patch_id, why in entry.get("dropped_patches", {}).items()
        ]
        if entry.get("adaptation"):
            lines.append(f"  - hand edits kept in `{entry['adaptation']}`")
            lines += [f"  - replayed hunk `{hunk}`" for hunk in entry["replayed"]]
        replaced = (
            "hand edits backed up before it was dropped" if entry["status"] == "dropped" else "replaced by --force"
        )
        lines += [
            f"  - {replaced}; backup: `{entry[key]}`" for key in ("backup", "adaptation_backup") if entry.get(key)
        ]
    if data["registration"] is not None:
        added = ", ".join(data["registration"]) or "already registered"
        shape = f"; register_model(): {data['registration_shape']}" if data.get("registration_shape") else ""
        lines.append(f"- `vllm_fl/__init__.py` (registration: {added}{shape})")
    return lines


def patches(data: dict) -> list[str]:
    local = {patch["id"]: patch["source"] for patch in data.get("local_patches", ())}
    lines = []
    for patch_id, count in data["patches"].items():
        origin = f" (the plugin's own: `{local[patch_id]}`)" if patch_id in local else ""
        lines.append(f"- {patch_id}{origin}: {count} rewrite(s)")
    return lines


def local_patches(data: dict) -> list[str]:
    return [
        f"- {patch['summary']} (`{patch['source']}`, {patch['rewrites']} rewrite(s))"
        for patch in data.get("local_patches", ())
    ]


def findings(data: dict) -> list[str]:
    return [
        f"- `{f['file']}:{f['line']}` [{f['check']}] {f['symbol']}: {f['message']} (fix: {f['fix']})"
        for f in data["findings"]
    ]


# --- the runtime steps --------------------------------------------------------------------------


def _tests_line(label: str, counts: dict | None, extra: str = "") -> list[str]:
    if not counts:
        return []
    text = f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
    if counts.get("error"):
        text += f", {counts['error']} errors"
    return [f"- {label}: {text}{extra}"]


def plugin_tests(data: dict) -> list[str]:
    """Steps 1, 7 and 8: the plugin's own tests."""
    tests = data.get("tests") or {}
    if not tests:
        return []
    lines = _tests_line("Unit (baseline)", tests.get("baseline"))
    regression = tests.get("regression")
    if regression:
        new = regression["new_failures"]
        lines += _tests_line("Unit (regression)", regression, f" — regressions: {', '.join(new) if new else 'none'}")
    functional = tests.get("functional")
    if functional:
        failing = functional["failing"]
        lines += _tests_line(
            "Functional", functional, f" — failing (reported, not blocking): {', '.join(failing)}" if failing else ""
        )
    preexisting = (regression or {}).get("preexisting") or (tests.get("baseline") or {}).get("failing")
    return lines + [f"- Pre-existing unit failures: {', '.join(preexisting) if preexisting else 'none'}"]


def verification(data: dict) -> list[str]:
    """Steps 9 and 10: the benchmark, the server and its answer, the GPUs."""
    steps_ = data.get("steps", {})
    benchmark, served = data.get("benchmark"), data.get("server")
    if not (benchmark or served or any(steps_.get(n, {}).get("outcome") not in (None, "not run") for n in ("9", "10"))):
        return []
    icon = {"passed": "✅", "failed": "❌"}
    outcome9 = steps_.get("9", {}).get("outcome", "not run")
    figures = (
        f" ({benchmark['requests_per_second']} requests/s, {benchmark['tokens_per_second']} tokens/s, "
        f"{benchmark['seconds']} s)"
        if benchmark
        else ""
    )
    lines = [f"- Benchmark: {icon.get(outcome9, outcome9)}{figures}"]
    outcome10 = steps_.get("10", {}).get("outcome", "not run")
    if served:
        resolved = ", ".join(served["evidence"]["resolved"]) or "?"
        lines.append(
            f"- Serve: ✅ {served['url']} ({'reused' if served['reused'] else 'started'}; architecture {resolved})"
        )
    else:
        lines.append(f"- Serve: {icon.get(outcome10, outcome10)}")
    lines.append(f"- Request: {icon.get(outcome10, outcome10)}")
    lines += _tiny_lines(data.get("tiny"))
    lines += [f"- Control: {note}" for note in (data.get("control") or {}).get("aligned", [])]
    lines += drafts.report_lines((data.get("tiny") or {}).get("draft"), data.get("draft"))
    if data.get("gpu"):
        gpu = data["gpu"]
        lines.append(f"- GPU: {'no GPU' if not gpu['available'] else str(len(gpu['gpus'])) + ' GPU(s)'}")
    return lines


def _tiny_lines(tiny: dict | None) -> list[str]:
    """--tiny's model: where its config came from (an inferred one said so) and its weights."""
    if not tiny:
        return []
    source = tiny.get("config_source") or {}
    inferred = " (inferred: a guess from the model's code, not a real checkpoint's config)"
    weights = (
        f"weights from {tiny['weights_from']}"
        if tiny["weights"] == "synthesized"
        else f"dummy weights ({tiny['reason']})"
    )
    return [
        f"- Tiny model: {tiny['arch']}, config from {source.get('text', '?')}"
        + (inferred if source.get("kind") == "inferred" else "")
        + _filled_text(source.get("filled") or [])
        + f"; {weights}"
    ]


#: how many fields filled by inference the tiny model's line names
FILLED_SHOWN = 6


def _filled_text(filled: list[str]) -> str:
    """The fields a config's source left absent or None, valued by inference from upstream's code."""
    if not filled:
        return ""
    names = [entry.split("=", 1)[0] for entry in filled]
    more = f" and {len(names) - FILLED_SHOWN} more" if len(names) > FILLED_SHOWN else ""
    return f" (left absent or None there, inferred from upstream's code: {', '.join(names[:FILLED_SHOWN])}{more})"


def e2e(data: dict) -> list[str]:
    """Step 11: ``E2E (text): ✅ (5/5 prompts matched, first 32 tokens)`` per kind, then one row per prompt."""
    found = data.get("e2e")
    if not found:
        return []
    prompts: dict[str, dict] = found.get("prompts", {})
    count = found.get("token_match_count")
    lines = []
    for kind, label in E2E_KINDS:
        entries = [p for p in prompts.values() if p.get("kind") == kind and p.get("verdict") != "skipped"]
        if not entries:
            continue
        compared = [p for p in entries if p["verdict"] in ("match", "near-tie", "diverged")]
        if not compared:
            states = sorted({p["verdict"] for p in entries})
            lines.append(f"- E2E ({label}): · ({', '.join(states)}; phase {found.get('phase')})")
            continue
        passed = all(p["verdict"] in ("match", "near-tie") for p in entries)
        matched = sum(p["verdict"] == "match" for p in compared)
        ties = sum(p["verdict"] == "near-tie" for p in compared)
        tie_text = f", {ties} near-tie(s)" if ties else ""
        basis = f"pooled vectors ({found['pooling_task']})" if found.get("pooling_task") else f"first {count} tokens"
        lines.append(
            f"- E2E ({label}): {'✅' if passed else '❌'} ({matched}/{len(entries)} prompts matched{tie_text}, {basis})"
        )
    lines += ["", "| prompt | verdict | diverges at | detail |", "|---|---|---|---|"]
    for prompt_id, entry in prompts.items():
        at = entry.get("diverge_at")
        where = "" if at is None else f"{at} ({entry.get('divergence')})"
        if entry.get("measure"):
            detail = entry["measure"]
        elif at is not None:
            detail = f"GT {entry.get('gt_token')!r} vs local {entry.get('local_token')!r}"
        else:
            detail = entry.get("reason", "")
        lines.append(f"| {prompt_id} | {entry.get('verdict')} | {where} | {detail} |")
    return lines


#: report.md's sections, in the procedure's order.
SECTIONS = (
    Section("Placeholders", placeholders),
    Section("Steps", steps),
    Section("Pattern", pattern),
    Section("Config bridge", bridge),
    Section("Files created/modified", files),
    Section("Compatibility fixes applied", patches),
    Section("The plugin's own patches", local_patches),
    Section(lambda data: f"Review findings ({len(data['findings'])})", findings),
    Section("Test results", plugin_tests),
    Section("Verification", verification),
    Section("E2E verification", e2e),
)
