"""The E2E part of report.md, from summary.json's ``e2e`` (the procedure's final-report lines)."""

from __future__ import annotations

KINDS = (("text", "text"), ("multimodal", "mm"))


def markdown_lines(e2e: dict | None) -> list[str]:
    """``E2E (text): ✅ (5/5 prompts matched, first 32 tokens)`` per kind, then one row per prompt."""
    if not e2e:
        return []
    prompts: dict[str, dict] = e2e.get("prompts", {})
    count = e2e.get("token_match_count")
    lines = ["## E2E verification", ""]
    for kind, label in KINDS:
        entries = [p for p in prompts.values() if p.get("kind") == kind and p.get("verdict") != "skipped"]
        if not entries:
            continue
        compared = [p for p in entries if p["verdict"] in ("match", "near-tie", "diverged")]
        if not compared:
            states = sorted({p["verdict"] for p in entries})
            lines.append(f"- E2E ({label}): · ({', '.join(states)}; phase {e2e.get('phase')})")
            continue
        passed = all(p["verdict"] in ("match", "near-tie") for p in entries)
        matched = sum(p["verdict"] == "match" for p in compared)
        ties = sum(p["verdict"] == "near-tie" for p in compared)
        tie_text = f", {ties} near-tie(s)" if ties else ""
        lines.append(
            f"- E2E ({label}): {'✅' if passed else '❌'} ({matched}/{len(entries)} prompts matched{tie_text}, "
            f"first {count} tokens)"
        )
    lines += ["", "| prompt | verdict | diverges at | detail |", "|---|---|---|---|"]
    for prompt_id, entry in prompts.items():
        at = entry.get("diverge_at")
        where = "" if at is None else f"{at} ({entry.get('divergence')})"
        if entry.get("diverge_at") is not None:
            detail = f"GT {entry.get('gt_token')!r} vs local {entry.get('local_token')!r}"
        else:
            detail = entry.get("reason", "")
        lines.append(f"| {prompt_id} | {entry.get('verdict')} | {where} | {detail} |")
    return lines + [""]
