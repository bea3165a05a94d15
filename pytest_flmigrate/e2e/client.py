"""An OpenAI-compatible client for the E2E step (requests): model discovery, greedy chat, pooling.

Every request goes to the model id the server reports at ``/v1/models``. Chat completions run
at temperature 0 with a fixed seed, ``logprobs`` with the top 5 per position and
``return_token_ids`` (vLLM's choice-level ``token_ids``). A pooling model answers vLLM's
``/pooling`` with the prompt's text and the model's task instead. Connection errors are retried a
bounded number of times; nothing else is retried (an HTTP error is an answer). A server that
stays unreachable gives one line, e.g. ``GT server http://h:8122: connection refused after 3
attempts; start it or check --gt-url``, and later calls on the same client fail at once with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import requests

from pytest_flmigrate.e2e.generation import Generation
from pytest_flmigrate.e2e.prompts import Prompt
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers import log_errors
from pytest_flmigrate.servers.answers import error_message, with_log_cause

SEED = 1234
TOP_LOGPROBS = 5
ATTEMPTS = 3
BACKOFF_SECONDS = 1.0
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 600.0


def base_url(url: str, label: str = "GT") -> str:
    """``scheme://host:port`` plus any path prefix, without a trailing ``/`` or ``/v1``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FlmigrateError(f"{label} URL {url!r}: expected http://HOST:PORT (an OpenAI-compatible server)")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise FlmigrateError(f"{label} URL {url!r}: the port is not a number in 1-65535") from None
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    return f"{parts.scheme}://{parts.netloc}{path}"


def connection_reason(exc: Exception) -> str:
    """A short reason for a failed connection: refused, timed out, unknown host, reset."""
    if isinstance(exc, requests.ConnectTimeout):
        return "no connection within the timeout"
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("Failed to resolve", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("timed out", "no connection within the timeout"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed without an answer"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
    ):
        if needle in text:
            return reason
    return f"connection failed ({text.splitlines()[0][:200] if text else type(exc).__name__})"


class OpenAIClient:
    """One server: ``label`` (GT, local) and ``hint`` (the fix) shape its error lines."""

    def __init__(
        self,
        url: str,
        *,
        label: str = "GT",
        hint: str = "start it or check --gt-url",
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF_SECONDS,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
        sleep: Callable[[float], None] = time.sleep,
        log: Path | None = None,
    ) -> None:
        self.base = base_url(url, label)
        self.log = log  # the server's log when this run started it: the cause of an HTTP 5xx
        self.label, self.hint = label, hint
        self.attempts, self.backoff, self.timeout = max(1, attempts), backoff, timeout
        self.sleep = sleep
        self.session = requests.Session()
        self._model: str | None = None
        self._down: FlmigrateError | None = None

    def __repr__(self) -> str:
        return f"OpenAIClient({self.label} {self.base})"

    def _where(self) -> str:
        return f"{self.label} server {self.base}"

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """The JSON answer of ``method path``; connection errors retried, then one line."""
        if self._down is not None:
            raise self._down
        url = self.base + path
        logged = log_errors.log_size(self.log)
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.session.request(method, url, json=body, timeout=self.timeout)
                break
            except requests.ConnectionError as exc:
                if attempt == self.attempts:
                    self._down = FlmigrateError(
                        f"{self._where()}: {connection_reason(exc)} after {self.attempts} attempt"
                        f"{'s' if self.attempts > 1 else ''}; {self.hint}"
                    )
                    raise self._down from None
                self.sleep(self.backoff * attempt)
            except requests.Timeout:
                raise FlmigrateError(
                    f"{self._where()}: no answer to {path} within {self.timeout[1]:.0f} s; "
                    "check the server's log (is it overloaded or stuck?)"
                ) from None
        if response.status_code >= 400:
            message = f"{self._where()}: HTTP {response.status_code} from {path}: {error_message(response)}"
            if response.status_code >= 500:
                message = with_log_cause(message, self.log, logged)
            raise FlmigrateError(message, response.text[:4000])
        try:
            return response.json()
        except ValueError:
            raise FlmigrateError(
                f"{self._where()}: {path} answered with something other than JSON: {response.text[:120]!r}"
            ) from None

    def model_id(self) -> str:
        """The first model id the server reports at ``/v1/models`` (cached)."""
        if self._model is None:
            data = self.request("GET", "/v1/models")
            models = data.get("data") if isinstance(data, dict) else None
            if not models or not isinstance(models, list) or not isinstance(models[0], dict) or "id" not in models[0]:
                raise FlmigrateError(f"{self._where()}: /v1/models lists no model; is it an OpenAI-compatible server?")
            self._model = str(models[0]["id"])
        return self._model

    def chat(
        self, prompt: Prompt, max_tokens: int, *, seed: int = SEED, top_logprobs: int = TOP_LOGPROBS
    ) -> Generation:
        """Greedy chat completion of ``prompt``: token ids, token strings, top logprobs, text."""
        model = self.model_id()
        body = {
            "model": model,
            "messages": prompt.messages(),
            "max_tokens": max_tokens,
            "temperature": 0,
            "seed": seed,
            "logprobs": True,
            "top_logprobs": top_logprobs,
            "return_token_ids": True,
        }
        data = self.request("POST", "/v1/chat/completions", body)
        return self.parse_chat(data, model, prompt.id)

    def parse_chat(self, data: dict, model: str, prompt_id: str) -> Generation:
        try:
            choice = data["choices"][0]
            text = (choice.get("message") or {}).get("content") or ""
            content = (choice.get("logprobs") or {}).get("content") or []
            tokens = [str(entry["token"]) for entry in content]
            top = [
                {str(alt["token"]): float(alt["logprob"]) for alt in entry.get("top_logprobs") or ()}
                for entry in content
            ]
            token_ids = choice.get("token_ids")
            prompt_ids = data.get("prompt_token_ids", choice.get("prompt_token_ids"))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise FlmigrateError(
                f"{self._where()}: the chat answer for {prompt_id} is not OpenAI-shaped ({type(exc).__name__}: {exc})",
                str(data)[:4000],
            ) from None
        if token_ids is None and not tokens:
            raise FlmigrateError(
                f"{self._where()}: the answer for {prompt_id} holds neither token_ids nor logprobs; "
                "serve with a vLLM that honours return_token_ids and logprobs"
            )
        return Generation(
            model=model,
            text=str(text),
            token_ids=None if token_ids is None else [int(t) for t in token_ids],
            tokens=tokens,
            top_logprobs=top,
            finish_reason=choice.get("finish_reason"),
            prompt_token_ids=None if prompt_ids is None else [int(t) for t in prompt_ids],
            extra={"usage": data.get("usage")} if data.get("usage") else {},
        )

    def pool(self, prompt: Prompt, task: str) -> Generation:
        """vLLM's ``/pooling`` of ``prompt``'s text for ``task`` (``embed``, ``token_classify``...):
        the pooled vectors, one row per vector."""
        model = self.model_id()
        data = self.request("POST", "/pooling", {"model": model, "input": prompt.text, "task": task})
        try:
            pooled = data["data"][0]["data"]
            rows = pooled if pooled and isinstance(pooled[0], list) else [pooled]
            vectors = [[float(x) for x in row] for row in rows]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise FlmigrateError(
                f"{self._where()}: the pooling answer for {prompt.id} holds no vectors ({type(exc).__name__}: {exc})",
                str(data)[:4000],
            ) from None
        if not vectors or not vectors[0]:
            raise FlmigrateError(f"{self._where()}: the pooling answer for {prompt.id} is empty")
        usage = data.get("usage") if isinstance(data, dict) else None
        return Generation(
            model=model,
            text="",
            token_ids=None,
            tokens=[],
            top_logprobs=[],
            extra={"usage": usage, "task": task} if usage else {"task": task},
            pooled=vectors,
        )
