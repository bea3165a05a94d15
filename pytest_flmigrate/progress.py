"""Lines that say what a long first run is doing (downloads, indexing, tiny models, servers
starting, each slow step of each model), one plain line each.

No carriage returns: every line reads on its own in a CI log. The pytest plugin routes them to
its terminal reporter and keeps progress quiet under ``-q``; elsewhere (bench scripts, library
use) they go to stderr. Under pytest-xdist a worker's lines travel with its test reports and the
controller prints them (session.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from pytest_flmigrate.steps import STEPS

Sink = Callable[[str], None]
#: A step of a model that took this long gets its line: warm runs stay silent.
SLOW_STEP_SECONDS = 2.0
#: A long wait (a server starting, a tiny model synthesized, a download) says how far along it is
#: this often, and only once it has lasted that long: short ones stay silent.
HEARTBEAT_SECONDS = 30.0


def _stderr(message: str) -> None:
    print(f"flmigrate: {message}", file=sys.stderr, flush=True)


_sink: Sink = _stderr
_quiet = False


def use(sink: Sink, *, quiet: bool = False) -> Callable[[], None]:
    """Send lines to ``sink``; ``quiet`` drops progress lines (notices still show). Returns the
    function that restores the previous destination (a pytest session's end)."""
    global _sink, _quiet
    previous = (_sink, _quiet)
    _sink, _quiet = sink, quiet

    def restore() -> None:
        global _sink, _quiet
        _sink, _quiet = previous

    return restore


def report(message: str) -> None:
    """A progress line: what a slow step is doing now."""
    if not _quiet:
        _sink(message)


def notice(message: str) -> None:
    """A line shown even when quiet: something was wrong and was repaired (a cache rebuilt)."""
    _sink(message)


class Ticker:
    """The lines of one long wait: every :data:`HEARTBEAT_SECONDS` while it lasts, what it is
    doing, for how long so far and what ``status()`` says (a log's last line); when it ends, how
    long it took, if it said anything before. A wait shorter than the heartbeat says nothing."""

    def __init__(self, what: str, status: Callable[[], str] = lambda: "", clock: Callable[[], float] = time.monotonic):
        self.what, self.status, self.clock = what, status, clock
        self.started = self.last = clock()
        self.said = False

    def tick(self) -> None:
        now = self.clock()
        if now - self.last >= HEARTBEAT_SECONDS:
            self.last, self.said = now, True
            detail = self.status()
            report(f"{self.what}: {now - self.started:.0f} s so far" + (f"; {detail}" if detail else ""))

    def done(self) -> None:
        if self.said:
            report(f"{self.what}: done in {self.clock() - self.started:.0f} s")


def last_line(text: str) -> str:
    """The last non-empty line of ``text`` (a log's tail), cut at 120 characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:120] if lines else ""


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


class StepTimes:
    """Seconds per model and step, from test reports as they arrive (on the xdist controller,
    every worker's). A model's step is over when a report of another of its steps arrives, or
    at the session's end; a slow one gets a line then."""

    def __init__(self) -> None:
        self.current: dict[str, tuple[int, float]] = {}  # model -> (its step now, seconds so far)

    def add(self, model: str, step: int, seconds: float) -> None:
        now, spent = self.current.get(model, (step, 0.0))
        if now != step:
            _step_done(model, now, spent)
            spent = 0.0
        self.current[model] = (step, spent + seconds)

    def finish(self) -> None:
        for model, (step, spent) in self.current.items():
            _step_done(model, step, spent)
        self.current.clear()


def _step_done(model: str, step: int, seconds: float) -> None:
    if seconds >= SLOW_STEP_SECONDS:
        report(f"{model}: step {step} ({STEPS[step].short}) done in {seconds:.0f} s")
