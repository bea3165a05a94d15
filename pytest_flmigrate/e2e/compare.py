"""Token comparison of a local generation against the ground truth (docs/procedure.md, step 11).

- MATCH: the first ``count`` tokens are identical (fewer when both servers stopped earlier at
  the same length).
- near-tie: at the first divergence each side's token is among the other side's top logprobs,
  the tolerance vLLM's own model tests use (``check_logprobs_close``); it passes, and the
  position is recorded. Like there, nothing after the first divergence is compared.
- otherwise a failure carrying both token sequences, the position and both texts.
- ``exact``: no near-tie passes (a speculative-decoding draft: the target's own tokens, since
  speculative decoding is lossless); a near-tie is a divergence, noted as one.

A divergence is *early* when it happens within the first ``EARLY_LIMIT`` tokens (likely a code
bug: weight loading, TP sharding, an op) and *late* otherwise (possibly numerical noise).
Tokens are compared by id when both servers returned ``token_ids``, else by token string.

A pooling model's outputs are vectors, not tokens: each of the local server's vectors must have
the ground truth's length and a cosine similarity of at least ``1 - POOLED_TOLERANCE`` with it (the
tolerance of vLLM's own embedding tests, ``check_embeddings_close``); a wrong weight or pooler
lands far below it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pytest_flmigrate.e2e.generation import Generation
from pytest_flmigrate.errors import FlmigrateError

EARLY_LIMIT = 5
MATCH, NEAR_TIE, DIVERGED = "match", "near-tie", "diverged"
POOLED = "pooled vectors"
POOLED_TOLERANCE = 1e-3
_SHOWN = 4  # values of a diverging vector shown in a report


@dataclass(frozen=True)
class Comparison:
    prompt_id: str
    verdict: str  # match, near-tie, diverged
    count: int  # tokens asked for (--token-match-count)
    compared: int  # tokens compared (the window actually checked)
    basis: str  # "token ids" or "token strings"
    diverge_at: int | None = None
    gt_window: list = field(default_factory=list)
    local_window: list = field(default_factory=list)
    gt_token: str | None = None  # the token strings at the divergence
    local_token: str | None = None
    gt_text: str = ""
    local_text: str = ""
    notes: tuple[str, ...] = ()
    measure: str = ""  # pooled vectors: the lowest similarity, or what differs at ``diverge_at``

    @property
    def passed(self) -> bool:
        return self.verdict in (MATCH, NEAR_TIE)

    @property
    def divergence(self) -> str | None:
        """``early`` (< EARLY_LIMIT), ``late``, or None when nothing diverged."""
        if self.diverge_at is None:
            return None
        return "early" if self.diverge_at < EARLY_LIMIT else "late"

    def summary(self) -> dict:
        """The per-prompt entry of summary.json's ``e2e``."""
        return {
            "verdict": self.verdict,
            "match": self.verdict == MATCH,
            "passed": self.passed,
            "diverge_at": self.diverge_at,
            "divergence": self.divergence,
            "tokens_compared": self.compared,
            "token_match_count": self.count,
            "basis": self.basis,
            **({"gt_token": self.gt_token, "local_token": self.local_token} if self.diverge_at is not None else {}),
            **({"notes": list(self.notes)} if self.notes else {}),
            **({"measure": self.measure} if self.measure else {}),
        }

    def headline(self) -> str:
        """One line: the verdict, and for a divergence where and what it likely means."""
        if self.basis == POOLED:
            return self._pooled_headline()
        if self.verdict == MATCH:
            return f"{self.prompt_id}: MATCH, first {self.compared} tokens identical ({self.basis})"
        where = f"token {self.diverge_at} (0-based) of {self.compared}"
        if self.verdict == NEAR_TIE:
            return (
                f"{self.prompt_id}: near-tie at {where}: GT {self.gt_token!r} vs local {self.local_token!r}, "
                "each within the other's top logprobs"
            )
        meaning = (
            "early divergence: likely a code bug; check weight loading, TP sharding, op implementations"
            if self.divergence == "early"
            else "late divergence: possibly numerical noise; check dtype and op implementations"
        )
        return (
            f"{self.prompt_id}: local diverges from GT at {where}: GT {self.gt_token!r} vs local "
            f"{self.local_token!r} ({meaning})"
        )

    def _pooled_headline(self) -> str:
        if self.verdict == MATCH:
            return (
                f"{self.prompt_id}: MATCH, {self.compared} pooled vector{'s' if self.compared != 1 else ''} "
                f"within cosine similarity {1 - POOLED_TOLERANCE:g} of GT's ({self.measure})"
            )
        return (
            f"{self.prompt_id}: local's pooled output differs from GT's at vector {self.diverge_at} (0-based) of "
            f"{self.compared}: {self.measure} (likely a code bug; check weight loading and the pooler)"
        )

    def report(self) -> str:
        """The headline, then both sequences (the divergence marked), both texts and any notes."""
        lines = [self.headline()]
        if self.verdict != MATCH and self.basis == POOLED:
            lines.append(f"GT    vector {self.diverge_at} starts {self.gt_window}")
            lines.append(f"local vector {self.diverge_at} starts {self.local_window}")
        elif self.verdict != MATCH:
            lines.append(f"GT    {self.basis}: {_marked(self.gt_window, self.diverge_at)}")
            lines.append(f"local {self.basis}: {_marked(self.local_window, self.diverge_at)}")
            lines.append(f"GT text:    {self.gt_text!r}")
            lines.append(f"local text: {self.local_text!r}")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _marked(window: list, position: int | None) -> str:
    parts = [repr(item) for item in window]
    if position is not None and position < len(parts):
        parts[position] = f">>{parts[position]}<<"
    return "[" + ", ".join(parts) + "]"


def _sequences(gt: Generation, local: Generation) -> tuple[str, list, list]:
    if gt.token_ids is not None and local.token_ids is not None:
        return "token ids", list(gt.token_ids), list(local.token_ids)
    if gt.tokens and local.tokens:
        return "token strings", list(gt.tokens), list(local.tokens)
    missing = "GT" if not (gt.token_ids is not None or gt.tokens) else "local"
    raise FlmigrateError(f"the {missing} result has neither token ids nor token strings; collect it again")


def _at(items: list, position: int):
    return items[position] if position < len(items) else None


def compare(prompt_id: str, gt: Generation, local: Generation, count: int, exact: bool = False) -> Comparison:
    """Compare the first ``count`` tokens of ``local`` against ``gt`` (``exact``: a near-tie fails)."""
    basis, gt_seq, local_seq = _sequences(gt, local)
    gt_window, local_window = gt_seq[:count], local_seq[:count]
    notes = []
    if (
        gt.prompt_token_ids is not None
        and local.prompt_token_ids is not None
        and gt.prompt_token_ids != local.prompt_token_ids
    ):
        first = next(
            (i for i, (a, b) in enumerate(zip(gt.prompt_token_ids, local.prompt_token_ids)) if a != b),
            min(len(gt.prompt_token_ids), len(local.prompt_token_ids)),
        )
        notes.append(
            f"the prompts were tokenized differently (from prompt token {first}): "
            "check the chat template and tokenizer the two servers load"
        )
    common: dict[str, Any] = dict(
        prompt_id=prompt_id,
        count=count,
        basis=basis,
        gt_window=gt_window,
        local_window=local_window,
        gt_text=gt.text,
        local_text=local.text,
    )
    diverge_at = next((i for i, (a, b) in enumerate(zip(gt_window, local_window)) if a != b), None)
    if diverge_at is None and len(gt_window) == len(local_window):
        return Comparison(verdict=MATCH, compared=len(gt_window), notes=tuple(notes), **common)
    if diverge_at is None:  # one side stopped inside the window
        diverge_at = min(len(gt_window), len(local_window))
        shorter = "GT" if len(gt_window) < len(local_window) else "local"
        notes.append(
            f"{shorter} stopped after {diverge_at} tokens "
            f"(finish reasons: GT {gt.finish_reason}, local {local.finish_reason})"
        )
    gt_token, local_token = _at(gt.tokens, diverge_at), _at(local.tokens, diverge_at)
    near_tie = (
        gt_token is not None
        and local_token is not None
        and local_token in (_at(gt.top_logprobs, diverge_at) or {})
        and gt_token in (_at(local.top_logprobs, diverge_at) or {})
    )
    if near_tie and exact:
        near_tie = False
        notes.append("a near-tie, but these tokens must be identical (speculative decoding is lossless)")
    if gt_token is None and diverge_at < len(gt_window):
        gt_token = str(gt_window[diverge_at])
    if local_token is None and diverge_at < len(local_window):
        local_token = str(local_window[diverge_at])
    return Comparison(
        verdict=NEAR_TIE if near_tie else DIVERGED,
        compared=max(len(gt_window), len(local_window)),
        diverge_at=diverge_at,
        gt_token=gt_token,
        local_token=local_token,
        notes=tuple(notes),
        **common,
    )


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if norm == 0.0:
        return 1.0 if not any(a) and not any(b) else 0.0
    return dot / norm


def compare_pooled(prompt_id: str, gt: Generation, local: Generation) -> Comparison:
    """Compare ``local``'s pooled vectors with ``gt``'s: the same shape, each vector within
    cosine similarity ``1 - POOLED_TOLERANCE``."""
    if gt.pooled is None or local.pooled is None:
        missing = "GT" if gt.pooled is None else "local"
        raise FlmigrateError(f"the {missing} result of {prompt_id} holds no pooled vectors; collect it again")
    rows = max(len(gt.pooled), len(local.pooled))
    common: dict[str, Any] = dict(prompt_id=prompt_id, count=len(gt.pooled), compared=rows, basis=POOLED)
    lowest = 1.0
    for row, (want, got) in enumerate(zip(gt.pooled, local.pooled)):
        if len(want) != len(got):
            return _pooled_divergence(common, row, want, got, f"{len(got)} values where GT has {len(want)}")
        similarity = _cosine(want, got)
        if similarity < 1 - POOLED_TOLERANCE:
            return _pooled_divergence(common, row, want, got, f"cosine similarity {similarity:.6f}")
        lowest = min(lowest, similarity)
    if len(gt.pooled) != len(local.pooled):
        row = min(len(gt.pooled), len(local.pooled))
        return _pooled_divergence(
            common, row, [], [], f"{len(local.pooled)} vectors where GT has {len(gt.pooled)} (tokenized differently?)"
        )
    return Comparison(verdict=MATCH, measure=f"lowest {lowest:.6f}", **common)


def _pooled_divergence(common: dict, row: int, want: list[float], got: list[float], why: str) -> Comparison:
    return Comparison(
        verdict=DIVERGED,
        diverge_at=row,
        gt_window=[round(x, 6) for x in want[:_SHOWN]],
        local_window=[round(x, 6) for x in got[:_SHOWN]],
        measure=why,
        **common,
    )
