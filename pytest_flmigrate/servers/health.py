"""Waiting, bounded, for a vLLM server's ``/health`` (step 10's and the ground truth's), while
watching that its process still lives."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from pytest_flmigrate import progress
from pytest_flmigrate.errors import FlmigrateError


def is_healthy(url: str, timeout: float = 5.0) -> bool:
    """True when ``url/health`` answers 200."""
    try:
        return requests.get(url.rstrip("/") + "/health", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_healthy(
    url: str,
    *,
    timeout: float,
    label: str,
    alive: Callable[[], bool] | None = None,
    log_tail: Callable[[], str] = lambda: "",
    log_hint: str = "",
    timeout_hint: str = "",
    exit_cause: Callable[[], str | None] = lambda: None,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Seconds until ``url/health`` answered 200; raises one line (log tail as detail) when the
    process dies first (with ``exit_cause``, the error its log names) or ``timeout`` seconds pass
    (then naming ``timeout_hint`` too). A long start says how far along it is (the log's last line)."""
    start = clock()
    ticker = progress.Ticker(f"{label} server {url} starting", lambda: progress.last_line(log_tail()), clock)
    while True:
        if is_healthy(url, timeout=min(5.0, max(interval, 1.0))):
            ticker.done()
            return clock() - start
        ticker.tick()
        if alive is not None and not alive():
            cause = exit_cause()
            raise FlmigrateError(
                f"{label} server exited before {url}/health answered{': ' + cause if cause else ''}"
                f"{'; see ' + log_hint if log_hint else ''}",
                log_tail(),
            )
        if clock() - start >= timeout:
            raise FlmigrateError(
                f"{label} server {url}: not healthy within {timeout:.0f} s{'; ' + timeout_hint if timeout_hint else ''}"
                f"{'; see ' + log_hint if log_hint else ''}",
                log_tail(),
            )
        sleep(interval)
