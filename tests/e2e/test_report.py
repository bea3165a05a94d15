"""The E2E lines of report.md."""

from __future__ import annotations

from pytest_flmigrate.report import markdown


def test_no_e2e_no_lines():
    assert markdown.e2e({"e2e": None}) == []


def test_lines_per_kind_and_rows_per_prompt():
    e2e = {
        "phase": "all",
        "token_match_count": 32,
        "prompts": {
            "t1": {"kind": "text", "verdict": "match", "diverge_at": None},
            "t2": {
                "kind": "text",
                "verdict": "error",
                "reason": "GT server http://h: connection refused after 3 attempts",
            },
            "m1": {
                "kind": "multimodal",
                "verdict": "near-tie",
                "diverge_at": 12,
                "divergence": "late",
                "gt_token": " red",
                "local_token": " Red",
            },
            "m2": {"kind": "multimodal", "verdict": "skipped", "reason": "text-only"},
        },
    }
    lines = markdown.Section("E2E verification", markdown.e2e).lines({"e2e": e2e})
    assert lines[:4] == [
        "## E2E verification",
        "",
        "- E2E (text): ❌ (1/2 prompts matched, first 32 tokens)",
        "- E2E (mm): ✅ (0/1 prompts matched, 1 near-tie(s), first 32 tokens)",
    ]
    assert "| t2 | error |  | GT server http://h: connection refused after 3 attempts |" in lines
    assert "| m1 | near-tie | 12 (late) | GT ' red' vs local ' Red' |" in lines
    assert "| m2 | skipped |  | text-only |" in lines


def test_collect_only_phase():
    e2e = {"phase": "gt", "token_match_count": 32, "prompts": {"t1": {"kind": "text", "verdict": "collected"}}}
    assert markdown.e2e({"e2e": e2e})[0] == "- E2E (text): · (collected; phase gt)"
