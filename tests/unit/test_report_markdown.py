"""report.md: one assembler over its sections (report/markdown.py), byte for byte."""

from __future__ import annotations

import copy

from pytest_flmigrate.report import markdown

FULL = {
    "model": "mimo",
    "placeholders": {"MODEL_DISPLAY_NAME": "MiMo", "MODEL_NAME": "mimo"},
    "upstream": {"source": "pypi:vllm==0.32.0", "version": "0.32.0", "commit": None},
    "pinned": {"version": "0.13.0", "transformers": "4.57.1"},
    "steps": {
        "1": {"name": "baseline unit tests", "outcome": "passed", "reason": "", "seconds": 1.0},
        "2": {"name": "upstream source and placeholders", "outcome": "passed", "reason": "", "seconds": 0.5},
        "3": {
            "name": "nearest plugin pattern",
            "outcome": "skipped",
            "reason": "no pattern\nsecond line",
            "seconds": 0,
        },
        "4": {"name": "config bridge and copy-then-patch", "outcome": "failed", "reason": "boom", "seconds": 2},
        "5": {"name": "register_model() entries", "outcome": "blocked", "reason": "step 4 failed", "seconds": 0},
        "6": {"name": "code review", "outcome": "not run", "reason": "", "seconds": 0},
        "9": {"name": "benchmark", "outcome": "passed", "reason": "", "seconds": 21},
        "10": {"name": "serve and request", "outcome": "passed", "reason": "", "seconds": 30},
        "11": {"name": "E2E token comparison", "outcome": "passed", "reason": "", "seconds": 40},
    },
    "pattern": {"pattern": "dense", "nearest": None, "evidence": ["no MoE", "no mamba"]},
    "bridge": {"needed": True, "reason": "MiMoConfig is missing"},
    "files": [
        {
            "path": "vllm_fl/models/mimo.py",
            "role": "model",
            "status": "created",
            "adaptation": ".flmigrate/adaptations/mimo.patch",
            "replayed": ["@@ -1 +1 @@"],
            "backup": ".flmigrate/backups/mimo.py",
        },
        {"path": "vllm_fl/configs/mimo.py", "role": "config", "status": "unchanged"},
    ],
    "registration": ["MiMoForCausalLM"],
    "patches": {"P1": 2, "P16": 1, "L1": 1},
    "local_patches": [
        {
            "id": "L1",
            "name": "fancy-norm",
            "source": "flmigrate_patches/l1_fancy_norm.py",
            "summary": "L1: upstream's FancyNorm -> the pin's RMSNorm.",
            "rewrites": 1,
        }
    ],
    "findings": [
        {"file": "vllm_fl/models/mimo.py", "line": 3, "check": "imports", "symbol": "x", "message": "m", "fix": "f"}
    ],
    "tests": {
        "baseline": {"passed": 2, "failed": 1, "skipped": 0, "error": 1, "failing": ["t::a"]},
        "regression": {
            "passed": 1,
            "failed": 2,
            "skipped": 0,
            "error": 0,
            "failing": ["t::a", "t::b"],
            "new_failures": ["t::b"],
            "preexisting": ["t::a"],
            "fixed": [],
        },
        "functional": {"passed": 0, "failed": 1, "skipped": 0, "error": 0, "failing": ["f::gpu"]},
    },
    "benchmark": {"requests_per_second": 0.09, "tokens_per_second": 24.2, "seconds": 21.2},
    "server": {"url": "http://127.0.0.1:8122", "reused": True, "evidence": {"resolved": ["MiMoForCausalLM"]}},
    "gpu": {"available": False, "gpus": []},
    "e2e": {
        "phase": "all",
        "token_match_count": 32,
        "prompts": {
            "t1": {"kind": "text", "verdict": "match", "diverge_at": None},
            "m1": {
                "kind": "multimodal",
                "verdict": "diverged",
                "diverge_at": 3,
                "divergence": "early",
                "gt_token": "a",
                "local_token": "b",
            },
        },
    },
}

#: report.md of FULL, line by line.
EXPECTED = [
    "# Migration: MiMo",
    "",
    "- upstream: pypi:vllm==0.32.0 (0.32.0)",
    "- pinned: vLLM 0.13.0, transformers 4.57.1",
    "",
    "## Placeholders",
    "",
    "- `MODEL_DISPLAY_NAME`: MiMo",
    "- `MODEL_NAME`: mimo",
    "",
    "## Steps",
    "",
    "| step | name | outcome | reason |",
    "|---|---|---|---|",
    "| 1 | baseline unit tests | ✅ passed |  |",
    "| 2 | upstream source and placeholders | ✅ passed |  |",
    "| 3 | nearest plugin pattern | ⏭ skipped | no pattern |",
    "| 4 | config bridge and copy-then-patch | ❌ failed | boom |",
    "| 5 | register_model() entries | ⛔ blocked | step 4 failed |",
    "| 6 | code review | · not run |  |",
    "| 9 | benchmark | ✅ passed |  |",
    "| 10 | serve and request | ✅ passed |  |",
    "| 11 | E2E token comparison | ✅ passed |  |",
    "",
    "## Pattern",
    "",
    "- dense, nearest plugin model: none",
    "  - no MoE",
    "  - no mamba",
    "",
    "## Config bridge",
    "",
    "- created: MiMoConfig is missing",
    "",
    "## Files created/modified",
    "",
    "- `vllm_fl/models/mimo.py` (model, created)",
    "  - hand edits kept in `.flmigrate/adaptations/mimo.patch`",
    "  - replayed hunk `@@ -1 +1 @@`",
    "  - replaced by --force; backup: `.flmigrate/backups/mimo.py`",
    "- `vllm_fl/configs/mimo.py` (config, unchanged)",
    "- `vllm_fl/__init__.py` (registration: MiMoForCausalLM)",
    "",
    "## Compatibility fixes applied",
    "",
    "- P1: 2 rewrite(s)",
    "- P16: 1 rewrite(s)",
    "- L1 (the plugin's own: `flmigrate_patches/l1_fancy_norm.py`): 1 rewrite(s)",
    "",
    "## The plugin's own patches",
    "",
    "- L1: upstream's FancyNorm -> the pin's RMSNorm. (`flmigrate_patches/l1_fancy_norm.py`, 1 rewrite(s))",
    "",
    "## Review findings (1)",
    "",
    "- `vllm_fl/models/mimo.py:3` [imports] x: m (fix: f)",
    "",
    "## Test results",
    "",
    "- Unit (baseline): 2 passed, 1 failed, 0 skipped, 1 errors",
    "- Unit (regression): 1 passed, 2 failed, 0 skipped — regressions: t::b",
    "- Functional: 0 passed, 1 failed, 0 skipped — failing (reported, not blocking): f::gpu",
    "- Pre-existing unit failures: t::a",
    "",
    "## Verification",
    "",
    "- Benchmark: ✅ (0.09 requests/s, 24.2 tokens/s, 21.2 s)",
    "- Serve: ✅ http://127.0.0.1:8122 (reused; architecture MiMoForCausalLM)",
    "- Request: ✅",
    "- GPU: no GPU",
    "",
    "## E2E verification",
    "",
    "- E2E (text): ✅ (1/1 prompts matched, first 32 tokens)",
    "- E2E (mm): ❌ (0/1 prompts matched, first 32 tokens)",
    "",
    "| prompt | verdict | diverges at | detail |",
    "|---|---|---|---|",
    "| t1 | match |  |  |",
    "| m1 | diverged | 3 (early) | GT 'a' vs local 'b' |",
    "",
]


def test_a_full_summary_renders_every_section_in_the_procedures_order():
    text = markdown.render(FULL)
    assert text.split("\n") == EXPECTED
    titles = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert titles == [s.title(FULL) if callable(s.title) else s.title for s in markdown.SECTIONS]


def test_a_section_without_a_body_is_left_out():
    data = copy.deepcopy(FULL)
    data.update(placeholders={}, pattern=None, bridge=None, tests=None, benchmark=None, server=None, gpu=None)
    data.update(e2e=None, files=[], patches={}, local_patches=[], findings=[], registration=None)
    data.update(steps={"2": FULL["steps"]["2"]})
    assert (
        markdown.render(data)
        == "# Migration: mimo\n\n- upstream: pypi:vllm==0.32.0 (0.32.0)\n- pinned: vLLM 0.13.0, transformers 4.57.1\n\n## Steps\n\n| step | name | outcome | reason |\n|---|---|---|---|\n| 2 | upstream source and placeholders | ✅ passed |  |\n"
    )


def test_a_section_reads_its_title_from_the_data():
    section = markdown.Section(lambda data: f"Things ({len(data['things'])})", lambda data: data["things"])
    assert section.lines({"things": ["- a", "- b"]}) == ["## Things (2)", "", "- a", "- b", ""]
    assert section.lines({"things": []}) == []


def test_a_control_on_the_pins_code_path_is_said_under_verification():
    note = "vLLM 0.13.0 serves model type axk1 without multi-head latent attention (its table lacks the type): ..."
    served = {"steps": {"10": {"outcome": "passed"}}}
    lines = markdown.verification({**served, "control": {"served": True, "reason": "", "aligned": [note]}})
    assert f"- Control: {note}" in lines
    assert not [line for line in markdown.verification({**served, "control": {"served": True}}) if "Control" in line]
