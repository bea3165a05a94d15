"""A small OpenAI-shaped HTTP server on 127.0.0.1 for the E2E tests (a real socket, canned answers).

It answers ``/health``, ``/v1/models`` and ``/v1/chat/completions`` the way vLLM does with
``logprobs``/``top_logprobs``/``return_token_ids``: choice-level ``token_ids``, logprobs content
with per-position top alternatives, ``prompt_token_ids``; and vLLM's ``/pooling`` (one vector per
word for the ``token_*`` tasks, the first word's otherwise). Tokens and vectors are a pure function of
the prompt text, so two stubs agree unless told to diverge.
"""

from __future__ import annotations

import json
import re
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def prompt_text(body: dict) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if part.get("type") == "text")


def default_tokens(text: str, count: int) -> list[tuple[int, str]]:
    words = re.findall(r"\w+|[^\w\s]", text) or ["x"]
    return [(zlib.crc32(w.encode()) % 50000 + 10, f" {w}") for w in (words * (count // len(words) + 1))[:count]]


def word_vector(word: str, dims: int) -> list[float]:
    seed = zlib.crc32(word.encode())
    return [((seed >> shift) % 97) / 97 - 0.5 for shift in range(dims)]


class StubOpenAI:
    """``diverge``: {position: (id, token string, keep_original_in_top)} changes this stub's output;
    ``stop_after``: stop generating after that many tokens; ``token_ids``: send choice-level ids;
    ``pooled``: {vector index: scale} multiplies those pooled vectors' second half (a wrong head)."""

    def __init__(
        self,
        model: str = "/models/tiny",
        *,
        diverge: dict | None = None,
        stop_after: int | None = None,
        token_ids: bool = True,
        logprobs: bool = True,
        status: int = 200,
        prompt_ids: list[int] | None = None,
        port: int = 0,
        pooled: dict | None = None,
        dims: int = 8,
    ) -> None:
        self.pooled, self.dims = pooled or {}, dims
        self.model, self.diverge, self.stop_after = model, diverge or {}, stop_after
        self.token_ids, self.logprobs, self.status, self.prompt_ids = token_ids, logprobs, status, prompt_ids
        self.requests: list[tuple[str, str, dict | None]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, data: dict) -> None:
                payload = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                stub.requests.append(("GET", self.path, None))
                if self.path == "/health":
                    self._send(200, {})
                elif self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": stub.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(("POST", self.path, body))
                if self.path == "/pooling":
                    self._send(200, stub.pool(body))
                elif self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                elif stub.status != 200:
                    self._send(stub.status, {"object": "error", "message": "The model is overloaded\nsecond line"})
                elif body.get("model") != stub.model:
                    self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
                else:
                    self._send(200, stub.answer(body))

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.server_bind()  # bound but not listening: connections are refused until activate()
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def activate(self) -> StubOpenAI:
        if self.thread is None:
            self.server.server_activate()
            self.thread = threading.Thread(
                target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self.thread.start()
        return self

    def close(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
        self.server.server_close()

    def pool(self, body: dict) -> dict:
        words = re.findall(r"\w+|[^\w\s]", body["input"]) or ["x"]
        rows = [word_vector(word, self.dims) for word in words]
        for index, scale in self.pooled.items():
            if index < len(rows):
                half = self.dims // 2
                rows[index] = rows[index][:half] + [x * scale for x in rows[index][half:]]
        if not body.get("task", "").startswith("token_"):
            return {"model": self.model, "data": [{"index": 0, "object": "pooling", "data": rows[0]}], "usage": {}}
        return {"model": self.model, "data": [{"index": 0, "object": "pooling", "data": rows}], "usage": {}}

    def answer(self, body: dict) -> dict:
        count = int(body.get("max_tokens", 16))
        if self.stop_after is not None:
            count = min(count, self.stop_after)
        tokens = default_tokens(prompt_text(body), count)
        originals = list(tokens)
        for position, (token_id, text, _) in self.diverge.items():
            if position < len(tokens):
                tokens[position] = (token_id, text)
        content = []
        for position, (token_id, text) in enumerate(tokens):
            top = [{"token": text, "logprob": -0.1}] + [{"token": f" alt{j}", "logprob": -2.0 - j} for j in range(4)]
            change = self.diverge.get(position)
            if change and change[2]:  # a near tie: the original token is this position's runner-up
                top[1] = {"token": originals[position][1], "logprob": -0.11}
            content.append(
                {
                    "token": text,
                    "logprob": -0.1,
                    "bytes": list(text.encode()),
                    "top_logprobs": top[: body.get("top_logprobs", 5)],
                }
            )
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": "".join(text for _, text in tokens)},
            "finish_reason": "length" if len(tokens) == int(body.get("max_tokens", 16)) else "stop",
            "logprobs": {"content": content} if self.logprobs else None,
        }
        if self.token_ids and body.get("return_token_ids"):
            choice["token_ids"] = [token_id for token_id, _ in tokens]
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "model": self.model,
            "choices": [choice],
            "prompt_token_ids": self.prompt_ids if self.prompt_ids is not None else [1, 2, 3],
            "usage": {"prompt_tokens": 3, "completion_tokens": len(tokens), "total_tokens": 3 + len(tokens)},
        }


if __name__ == "__main__":  # a stub server as a process of its own: python stub_server.py PORT
    import sys
    import time

    StubOpenAI(model=sys.argv[2] if len(sys.argv) > 2 else "/models/tiny", port=int(sys.argv[1])).activate()
    print(f"stub OpenAI server on 127.0.0.1:{sys.argv[1]}", flush=True)
    while True:
        time.sleep(3600)
