"""Lines that say what a long first run is doing (downloads, indexing), one plain line each.

No carriage returns: every line reads on its own in a CI log. The pytest plugin routes them to
its terminal reporter and keeps progress quiet under ``-q``; elsewhere (bench scripts, library
use) they go to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

Sink = Callable[[str], None]


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


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
