"""Step 9: ``vllm bench throughput --load-format dummy`` in the pinned env, throughput parsed; with
--tiny, the same load sent to step 10's server instead (``against_server``: no third engine).

Flags follow the procedure's benchmark defaults (input 128, output 128, 2 prompts, TP from
``--tp``) in the spelling of the pinned vLLM: releases whose throughput benchmark reads
``random_input_len`` take ``--random-input-len/--random-output-len`` (0.32 ignores ``--input-len``
for the random dataset), older ones (0.13) ``--input-len/--output-len``. ``--bench-args`` come last,
so they can override any of it.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from pytest_flmigrate import envs
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers import procs

INPUT_LEN = 128
OUTPUT_LEN = 128
NUM_PROMPTS = 2
TIMEOUT = 3600.0
#: Token ids of the server benchmark's prompts: inside any vocabulary (the tiny one has 2048).
PROMPT_TOKEN = 100
_THROUGHPUT = re.compile(
    r"Throughput:\s*([\d.]+)\s*requests/s,\s*([\d.]+)\s*total tokens/s(?:,\s*([\d.]+)\s*output tokens/s)?"
)


def uses_random_lengths(pinned_vllm_dir: Path | None) -> bool:
    """Whether the pinned ``vllm/benchmarks/throughput.py`` reads ``random_input_len``."""
    if pinned_vllm_dir is None:
        return False
    try:
        return "random_input_len" in (pinned_vllm_dir / "benchmarks" / "throughput.py").read_text(encoding="utf-8")
    except OSError:
        return False


def command(
    python: str, model: str, *, tp: int, random_lengths: bool, output_json: Path, extra: tuple[str, ...] = ()
) -> list[str]:
    lengths = (
        ["--random-input-len", str(INPUT_LEN), "--random-output-len", str(OUTPUT_LEN)]
        if random_lengths
        else ["--input-len", str(INPUT_LEN), "--output-len", str(OUTPUT_LEN)]
    )
    return [
        python,
        "-m",
        envs.CLI_MODULE,
        "bench",
        "throughput",
        "--model",
        model,
        "--load-format",
        "dummy",
        "--dataset-name",
        "random",
        *lengths,
        "--num-prompts",
        str(NUM_PROMPTS),
        "--tensor-parallel-size",
        str(tp),
        "--output-json",
        str(output_json),
        *extra,
    ]


@dataclass(frozen=True)
class BenchResult:
    requests_per_second: float
    tokens_per_second: float
    output_tokens_per_second: float | None
    seconds: float  # the benchmark's own elapsed time
    wall_seconds: float  # the whole command, engine start included
    num_requests: int | None
    total_num_tokens: int | None
    command: tuple[str, ...]
    log: str

    def as_dict(self) -> dict:
        return {
            "requests_per_second": round(self.requests_per_second, 4),
            "tokens_per_second": round(self.tokens_per_second, 2),
            "output_tokens_per_second": (
                round(self.output_tokens_per_second, 2) if self.output_tokens_per_second is not None else None
            ),
            "seconds": round(self.seconds, 3),
            "wall_seconds": round(self.wall_seconds, 1),
            "num_requests": self.num_requests,
            "total_num_tokens": self.total_num_tokens,
            "input_len": INPUT_LEN,
            "output_len": OUTPUT_LEN,
            "command": list(self.command),
            "log": self.log,
        }


def parse(output_json: Path, log_text: str) -> dict:
    """Figures from ``--output-json``, completed from the printed ``Throughput:`` line."""
    data: dict = {}
    try:
        raw = json.loads(output_json.read_text(encoding="utf-8"))
        data = {
            key: raw.get(key)
            for key in ("requests_per_second", "tokens_per_second", "elapsed_time", "num_requests", "total_num_tokens")
        }
    except (OSError, ValueError):
        pass
    match = None
    for match in _THROUGHPUT.finditer(log_text):
        pass
    if match:
        data.setdefault("requests_per_second", float(match.group(1)))
        data.setdefault("tokens_per_second", float(match.group(2)))
        if match.group(3):
            data["output_tokens_per_second"] = float(match.group(3))
    if data.get("requests_per_second") is None or data.get("tokens_per_second") is None:
        raise ValueError("no throughput figures")
    return data


def run(
    python: str,
    model: str,
    *,
    tp: int,
    random_lengths: bool,
    extra: tuple[str, ...],
    logs: Path,
    timeout: float = TIMEOUT,
) -> BenchResult:
    log = logs / "benchmark.log"
    output_json = logs / "benchmark.json"
    output_json.unlink(missing_ok=True)
    argv = command(python, model, tp=tp, random_lengths=random_lengths, output_json=output_json, extra=extra)
    finished = envs.run_logged(argv, label="bench", log=log, timeout=timeout, what="vllm bench throughput")
    text = log.read_text(encoding="utf-8", errors="replace")
    if finished.returncode != 0:
        raise FlmigrateError(f"vllm bench throughput exited {finished.returncode} (log: {log})", procs.tail(log))
    try:
        figures = parse(output_json, text)
    except ValueError:
        raise FlmigrateError(
            f"vllm bench throughput printed no throughput figures (log: {log})", procs.tail(log)
        ) from None
    return BenchResult(
        requests_per_second=float(figures["requests_per_second"]),
        tokens_per_second=float(figures["tokens_per_second"]),
        output_tokens_per_second=figures.get("output_tokens_per_second"),
        seconds=float(figures.get("elapsed_time") or 0.0),
        wall_seconds=finished.seconds,
        num_requests=figures.get("num_requests"),
        total_num_tokens=figures.get("total_num_tokens"),
        command=tuple(argv),
        log=str(log),
    )


def against_server(
    url: str, *, logs: Path, num_prompts: int = NUM_PROMPTS, timeout: float = TIMEOUT, task: str | None = None
) -> BenchResult:
    """The benchmark's load (``num_prompts`` concurrent requests of INPUT_LEN prompt tokens and
    OUTPUT_LEN generated ones, EOS ignored) sent to a healthy server's ``/v1/completions``; figures
    from the replies' usage. A pooling model (``task``: its pooling task) gets the same prompts at
    ``/pooling`` instead, and generates nothing. The requests and replies go to ``benchmark.log``."""
    log = logs / "benchmark.log"
    endpoint = url.rstrip("/") + ("/pooling" if task else "/v1/completions")
    start = time.monotonic()
    try:
        models = requests.get(url.rstrip("/") + "/v1/models", timeout=60)
        models.raise_for_status()
        model = models.json()["data"][0]["id"]
    except (requests.RequestException, ValueError, LookupError) as exc:
        raise FlmigrateError(f"benchmark: {url}/v1/models gave no model id: {exc}") from None
    body: dict = {
        "model": model,
        "prompt": [PROMPT_TOKEN] * INPUT_LEN,
        "max_tokens": OUTPUT_LEN,
        "min_tokens": OUTPUT_LEN,
        "ignore_eos": True,
        "temperature": 0,
    }
    if task:
        body = {"model": model, "input": [PROMPT_TOKEN] * INPUT_LEN, "task": task}

    def one(_: int) -> requests.Response:
        return requests.post(endpoint, json=body, timeout=timeout)

    sent = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=num_prompts) as pool:
            replies = list(pool.map(one, range(num_prompts)))
    except requests.RequestException as exc:
        raise FlmigrateError(f"benchmark request to {endpoint} failed: {exc}") from None
    elapsed = time.monotonic() - sent
    log.write_text(
        json.dumps(
            {
                "endpoint": endpoint,
                "request": {**body, ("input" if task else "prompt"): f"{INPUT_LEN} x token {PROMPT_TOKEN}"},
            }
        )
        + "\n"
        + "\n".join(f"HTTP {reply.status_code} {reply.text[:2000]}" for reply in replies)
        + "\n",
        encoding="utf-8",
    )
    failed = [reply for reply in replies if reply.status_code != 200]
    if failed:
        raise FlmigrateError(
            f"benchmark request to {endpoint} answered HTTP {failed[0].status_code} (log: {log})",
            failed[0].text[-2000:],
        )
    usages = [reply.json().get("usage") or {} for reply in replies]
    prompt_tokens = sum(int(usage.get("prompt_tokens") or 0) for usage in usages)
    output_tokens = sum(int(usage.get("completion_tokens") or 0) for usage in usages)
    return BenchResult(
        requests_per_second=num_prompts / elapsed,
        tokens_per_second=(prompt_tokens + output_tokens) / elapsed,
        output_tokens_per_second=output_tokens / elapsed,
        seconds=elapsed,
        wall_seconds=time.monotonic() - start,
        num_requests=num_prompts,
        total_num_tokens=prompt_tokens + output_tokens,
        command=("POST", endpoint, f"x{num_prompts}"),
        log=str(log),
    )
