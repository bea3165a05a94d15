"""What an OpenAI-compatible server's error answer says (step 10's requests and step 11's client)."""

from __future__ import annotations

from pathlib import Path

import requests

from ..errors import FlmigrateError
from . import log_errors


class ErrorAnswer(FlmigrateError):
    """A request ``what`` to ``url`` that the server answered with an error status: the status and the
    first line of the answer's message, the body's end as detail."""

    def __init__(self, what: str, url: str, response: requests.Response) -> None:
        super().__init__(
            f"{what} to {url} answered HTTP {response.status_code}: {error_message(response)}", response.text[-2000:]
        )
        self.status = response.status_code

    @property
    def server_error(self) -> bool:
        """HTTP 5xx: the server failed while answering (vLLM's message then says only to see its log)."""
        return self.status >= 500


def with_log_cause(message: str, log: Path | None, offset: int) -> str:
    """``message`` of a server error answer, with the first error line the server's ``log`` gained
    after ``offset`` (while it answered: vLLM's HTTP 5xx message says only to see its log)."""
    cause = log_errors.error_since(log, offset)
    return f"{message}; its log says {cause} (see {log})" if cause else message


def error_message(response: requests.Response) -> str:
    """The first line (at most 300 characters) of the message an error answer carries: vLLM's
    ``{"error": {"message": ...}}``, an ``error`` string, ``message`` or ``detail``, else the body
    or the reason phrase; ``(empty body)`` when there is nothing."""
    try:
        data = response.json()
    except ValueError:
        data = None
    message = None
    if isinstance(data, dict):
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else (error if isinstance(error, str) else None)
        message = message or data.get("message") or data.get("detail")
    text = str(message) if message else (response.text or response.reason or "")
    first = text.strip().splitlines()[0] if text.strip() else "(empty body)"
    return first[:300]
