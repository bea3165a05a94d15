"""One prompt through the selected phase: collect (or reuse) GT and local results, compare.

Servers are given as providers (callables returning a URL or a :class:`ServerRef`), called only
when a request is due: a phase that needs no server (``compare``, or ``all`` with every GT
result saved) never starts or contacts one. In the suite the providers are the fixtures
``gt_server`` and ``local_server_url``, requested on demand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate.e2e.client import SEED, TOP_LOGPROBS, OpenAIClient
from pytest_flmigrate.e2e.compare import Comparison, compare, compare_pooled
from pytest_flmigrate.e2e.generation import Generation
from pytest_flmigrate.e2e.prompts import Prompt
from pytest_flmigrate.e2e.results import ResultStore, phase_plan
from pytest_flmigrate.errors import FlmigrateError


@dataclass(frozen=True)
class ServerRef:
    """A server to send requests to: its URL, how it came to be, and the fix for a connection error."""

    url: str
    source: str = ""
    hint: str = ""
    log: Path | None = None  # a server this run started: its log, read for the cause of an HTTP 5xx


DEFAULT_HINTS = {
    "gt": "start it or check --gt-url",
    "local": "start it (step 10, vllm serve with the plugin) or check --port",
}
LABELS = {"gt": "GT", "local": "local"}
ServerProvider = Callable[[], "ServerRef | str"]


@dataclass(frozen=True)
class PromptOutcome:
    prompt: Prompt
    phase: str
    comparison: Comparison | None
    sides: dict[str, str]  # side -> collected / reused / saved
    tokens: dict[str, int]

    @property
    def passed(self) -> bool:
        return self.comparison is None or self.comparison.passed

    def summary(self) -> dict:
        base = {"kind": self.prompt.kind, "phase": self.phase, **{side: how for side, how in self.sides.items()}}
        if self.comparison is None:
            return {"verdict": "collected", **base, "tokens": self.tokens}
        return {**self.comparison.summary(), **base}

    def message(self) -> str:
        if self.comparison is not None:
            return self.comparison.report()
        collected = ", ".join(f"{side} {self.sides[side]} ({count} tokens)" for side, count in self.tokens.items())
        return f"{self.prompt.id}: {collected}; no comparison in --e2e-phase {self.phase}"


class Runner:
    """Runs prompts for one model: its result store, the phase, and a client per server used."""

    def __init__(
        self,
        store: ResultStore,
        *,
        phase: str,
        token_match_count: int,
        max_tokens: int,
        client_options: dict | None = None,
        replay: Callable[[], ResultStore] | None = None,
    ) -> None:
        """``replay`` gives, on first need, a second store of GT results (--tiny's control cache):
        where the phase reuses GT results and the model's own store has none, a result kept there is
        replayed (and saved to the model's store); a GT result collected here is kept there too."""
        self.store, self.phase = store, phase
        self.replay = replay
        self._replay_store: ResultStore | None = None
        self.plan = phase_plan(phase)
        self.count, self.max_tokens = token_match_count, max_tokens
        self.client_options = dict(client_options or {})
        self.clients: dict[str, OpenAIClient] = {}
        #: no near-tie passes (compare.py): set for a speculative-decoding draft's tiny target
        self.exact = False
        #: what says, on first need, whether the model pools and for which task (``pool_for``)
        self._task_of: Callable[[], str | None] = lambda: None
        self._task: tuple[str | None] | None = None
        #: seconds spent collecting (a server started on first use included) and comparing, per side
        self.seconds: dict[str, float] = {"gt": 0.0, "local": 0.0, "compare": 0.0}
        store.info.update(
            {"phase": phase, "token_match_count": token_match_count, "max_tokens": max_tokens, "seconds": self.seconds}
        )

    def pool_for(self, task_of: Callable[[], str | None]) -> None:
        """``task_of()``, asked once when a request is due: a pooling model's task (``embed``...),
        whose prompts are then pooled rather than chatted, or None. Comparing saved results needs
        no answer: they hold vectors or tokens."""
        self._task_of, self._task = task_of, None

    @property
    def task(self) -> str | None:
        if self._task is None:
            task = self._task_of()
            self._task = (task,)
            if task:
                self.store.info["pooling_task"] = task
        return self._task[0]

    @property
    def request(self) -> dict:
        """The request settings a saved result was made with (a result made otherwise is not reused)."""
        if self.task:
            return {"pooling_task": self.task}
        return {"max_tokens": self.max_tokens, "temperature": 0, "seed": SEED, "top_logprobs": TOP_LOGPROBS}

    def client(self, side: str, provider: ServerProvider) -> OpenAIClient:
        """The client of ``side``, made on first use from ``provider`` (which may start the server)."""
        if side not in self.clients:
            ref = provider()
            ref = ServerRef(ref) if isinstance(ref, str) else ref
            self.clients[side] = OpenAIClient(
                ref.url, label=LABELS[side], hint=ref.hint or DEFAULT_HINTS[side], log=ref.log, **self.client_options
            )
            self.store.info[side] = {"url": self.clients[side].base, **({"source": ref.source} if ref.source else {})}
        return self.clients[side]

    def replay_store(self) -> ResultStore | None:
        if self._replay_store is None and self.replay is not None:
            self._replay_store = self.replay()
        return self._replay_store

    def _collect(self, side: str, prompt: Prompt, provider: ServerProvider) -> Generation:
        start = time.monotonic()
        try:
            return self._request(side, prompt, provider)
        finally:
            self.seconds[side] = round(self.seconds[side] + time.monotonic() - start, 2)

    def _request(self, side: str, prompt: Prompt, provider: ServerProvider) -> Generation:
        client = self.client(side, provider)
        generation = client.pool(prompt, self.task) if self.task else client.chat(prompt, self.max_tokens)
        self.store.info[side]["model"] = generation.model
        server = {"url": client.base, "model": generation.model}
        self.store.save(side, prompt, generation, self.request, server)
        kept = self.replay_store() if side == "gt" else None
        if kept is not None:
            kept.save(side, prompt, generation, self.request, server)
        return generation

    def _replayed(self, prompt: Prompt) -> Generation | None:
        """The GT result the replay store keeps for this prompt and request, saved to the model's store."""
        kept = self.replay_store()
        saved = kept.reusable("gt", prompt, self.request) if kept is not None else None
        if saved is None:
            return None
        server = dict(saved.meta.get("server") or {})
        self.store.save("gt", prompt, saved.generation, self.request, server)
        self.store.info.setdefault("gt", {**server, "replayed_from": str(Path(saved.path).parent.parent)})
        return saved.generation

    def run(self, prompt: Prompt, servers: Mapping[str, ServerProvider]) -> PromptOutcome:
        """Collect, reuse or load what the phase says, compare if it says so; records the outcome.

        ``servers`` maps ``gt`` and ``local`` to providers; only the ones the phase needs are called.
        """
        try:
            outcome = self._run(prompt, servers)
        except FlmigrateError as exc:
            self.store.record(
                prompt.id, {"verdict": "error", "kind": prompt.kind, "phase": self.phase, "reason": exc.message}
            )
            raise
        self.store.record(prompt.id, outcome.summary())
        return outcome

    def needs(self, side: str, prompt: Prompt) -> bool:
        """Whether running ``prompt`` will send a request to ``side``'s server."""
        if side == "gt":
            if not self.plan.collect_gt:
                return False
            if not self.plan.reuse_gt:
                return True
            if self.store.reusable("gt", prompt, self.request):
                return False
            kept = self.replay_store()
            return kept is None or kept.reusable("gt", prompt, self.request) is None
        return self.plan.collect_local

    def skip(self, prompt: Prompt, reason: str) -> None:
        self.store.record(prompt.id, {"verdict": "skipped", "kind": prompt.kind, "phase": self.phase, "reason": reason})

    def _run(self, prompt: Prompt, servers: Mapping[str, ServerProvider]) -> PromptOutcome:
        plan = self.plan
        found: dict[str, Generation] = {}
        sides: dict[str, str] = {}
        if plan.collect_gt:
            saved = self.store.reusable("gt", prompt, self.request) if plan.reuse_gt else None
            replayed = self._replayed(prompt) if plan.reuse_gt and saved is None else None
            if saved is not None:
                found["gt"], sides["gt"] = saved.generation, "reused"
            elif replayed is not None:
                found["gt"], sides["gt"] = replayed, "replayed"
            else:
                found["gt"], sides["gt"] = self._collect("gt", prompt, servers["gt"]), "collected"
        if plan.collect_local:
            found["local"], sides["local"] = self._collect("local", prompt, servers["local"]), "collected"
        if not plan.compare:
            return PromptOutcome(prompt, self.phase, None, sides, {s: g.length for s, g in found.items()})
        for side in ("gt", "local"):
            if side not in found:
                found[side], sides[side] = self.store.require(side, prompt).generation, "saved"
        start = time.monotonic()
        pooled = found["gt"].pooled is not None or found["local"].pooled is not None
        if pooled:
            self.store.info.setdefault(
                "pooling_task", found["gt"].extra.get("task") or found["local"].extra.get("task")
            )
        comparison = (
            compare_pooled(prompt.id, found["gt"], found["local"])
            if pooled
            else compare(prompt.id, found["gt"], found["local"], self.count, self.exact)
        )
        self.seconds["compare"] = round(self.seconds["compare"] + time.monotonic() - start, 4)
        return PromptOutcome(prompt, self.phase, comparison, sides, {s: g.length for s, g in found.items()})
