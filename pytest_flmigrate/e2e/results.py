"""Saved E2E generations and per-prompt outcomes: ``reports/<model>/e2e/{gt,local}/<prompt id>.json``.

Each saved file holds the generation and what it was made from (the prompt's fingerprint, the
request settings, the server URL and model id, when). A saved GT result whose prompt and
request settings match is reused, so a temporary GT server is needed once. The phases
(``--e2e-phase``):

- ``gt``: collect GT results afresh and save them (the way to refresh them);
- ``local``: collect local results and save them;
- ``compare``: compare saved results; no server is contacted;
- ``all``: reuse saved GT results (collect the missing ones), collect local results, compare.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_flmigrate.e2e.generation import Generation
from pytest_flmigrate.e2e.prompts import Prompt
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.manifest import atomic_write

SIDES = ("gt", "local")
PHASES = ("gt", "local", "compare", "all")
FORMAT = 1
#: The counts of summary.json's ``e2e``, derived from its prompts.
COUNTS = ("matched", "near_ties", "diverged", "compared")


@dataclass(frozen=True)
class PhasePlan:
    """What one phase does for a prompt."""

    collect_gt: bool
    reuse_gt: bool
    collect_local: bool
    compare: bool


def phase_plan(phase: str) -> PhasePlan:
    if phase not in PHASES:
        raise FlmigrateError(f"--e2e-phase {phase!r}: expected one of {', '.join(PHASES)}")
    return {
        "gt": PhasePlan(collect_gt=True, reuse_gt=False, collect_local=False, compare=False),
        "local": PhasePlan(collect_gt=False, reuse_gt=False, collect_local=True, compare=False),
        "compare": PhasePlan(collect_gt=False, reuse_gt=True, collect_local=False, compare=True),
        "all": PhasePlan(collect_gt=True, reuse_gt=True, collect_local=True, compare=True),
    }[phase]


@dataclass(frozen=True)
class Saved:
    generation: Generation
    meta: dict
    path: Path


class ResultStore:
    """The ``e2e/`` folder of one model's report, and the outcomes recorded during the run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.outcomes: dict[str, dict] = {}
        self.info: dict[str, Any] = {}

    def path(self, side: str, prompt_id: str) -> Path:
        if side not in SIDES:
            raise ValueError(f"side {side!r}: expected one of {SIDES}")
        return self.root / side / f"{prompt_id}.json"

    def save(self, side: str, prompt: Prompt, generation: Generation, request: dict, server: dict) -> Path:
        """Write ``generation`` with its provenance; returns the file."""
        path = self.path(side, prompt.id)
        data = {
            "format": FORMAT,
            "side": side,
            "prompt_id": prompt.id,
            "prompt_fingerprint": prompt.fingerprint(),
            "request": request,
            "server": server,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "generation": generation.to_dict(),
        }
        atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return path

    def load(self, side: str, prompt: Prompt) -> Saved | None:
        """The saved result of ``prompt``, or None when there is none; a corrupt file is an error."""
        path = self.path(side, prompt.id)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            generation = Generation.from_dict(data["generation"])
        except (ValueError, KeyError, TypeError) as exc:
            raise FlmigrateError(
                f"{path}: saved {side} result is unreadable ({type(exc).__name__}); delete it and collect it again "
                f"(--e2e-phase {side})"
            ) from None
        return Saved(generation, {k: v for k, v in data.items() if k != "generation"}, path)

    def reusable(self, side: str, prompt: Prompt, request: dict) -> Saved | None:
        """The saved result when it was made from this prompt with these request settings."""
        saved = self.load(side, prompt)
        if saved is None:
            return None
        if saved.meta.get("prompt_fingerprint") != prompt.fingerprint() or saved.meta.get("request") != request:
            return None
        return saved

    def require(self, side: str, prompt: Prompt) -> Saved:
        """The saved result for comparison: present, and made from this very prompt."""
        saved = self.load(side, prompt)
        if saved is None:
            raise FlmigrateError(
                f"{prompt.id}: no saved {side} result at {self.path(side, prompt.id)}; "
                f"collect it first with --e2e-phase {side} (or all)"
            )
        if saved.meta.get("prompt_fingerprint") != prompt.fingerprint():
            raise FlmigrateError(
                f"{prompt.id}: the saved {side} result at {saved.path} was made from a different prompt; "
                f"collect it again with --e2e-phase {side}"
            )
        return saved

    def record(self, prompt_id: str, outcome: dict) -> None:
        self.outcomes[prompt_id] = outcome

    def summary(self, earlier: dict | None = None) -> dict | None:
        """summary.json's ``e2e``: per prompt match, divergence and tokens compared.

        A prompt this session did not run keeps its entry of ``earlier`` (the previous summary's
        ``e2e``), marked ``"earlier_run": true`` as step outcomes are, so ``-k "e2e and t3"`` or
        ``-k serve`` does not erase the other prompts' verdicts. None when no prompt ever ran.
        """
        earlier = earlier if isinstance(earlier, dict) else {}
        before = earlier.get("prompts")
        before = before if isinstance(before, dict) else {}
        prompts = {
            prompt_id: self.outcomes.get(prompt_id) or {**entry, "earlier_run": True}
            for prompt_id, entry in before.items()
            if isinstance(entry, dict)
        }
        prompts.update(self.outcomes)
        if not prompts:
            return None
        if self.outcomes:
            info = {**self.info, "results_dir": str(self.root)}
        else:
            info = {key: value for key, value in earlier.items() if key not in COUNTS + ("prompts",)}
        compared = [o for o in prompts.values() if o.get("verdict") in ("match", "near-tie", "diverged")]
        return {
            **info,
            "matched": sum(o["verdict"] == "match" for o in compared),
            "near_ties": sum(o["verdict"] == "near-tie" for o in compared),
            "diverged": sum(o["verdict"] == "diverged" for o in compared),
            "compared": len(compared),
            "prompts": prompts,
        }
