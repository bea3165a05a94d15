"""The argv of a ground-truth vLLM server (locally from ``--gt-python`` or remotely per ``--gt-config``).

The default launcher is ``PYTHON -m vllm.entrypoints.cli.main serve``: ``vllm serve`` of that env,
as step 10 starts the plugin's server, without depending on a console script on PATH (upstream
deprecates ``python -m vllm.entrypoints.openai.api_server``). A launcher ending in ``serve`` gets
the model as its positional argument, any other ``--model MODEL``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_flmigrate.envs import CLI_MODULE


def launcher(python: str | None = None, command: Sequence[str] | None = None) -> list[str]:
    """``command`` if given, else ``python -m vllm.entrypoints.cli.main serve`` (``python3`` when no
    python is given)."""
    if command:
        return list(command)
    return [python or "python3", "-m", CLI_MODULE, "serve"]


def serve_argv(
    launch: Sequence[str], *, model: str, host: str, port: int, tp: int = 1, extra: Sequence[str] = ()
) -> list[str]:
    """The full argv: launcher, model, bind address, port, TP (when above 1), extra arguments."""
    argv = list(launch)
    argv += [model] if argv and argv[-1] == "serve" else ["--model", model]
    argv += ["--host", host, "--port", str(port)]
    if tp > 1:
        argv += ["--tensor-parallel-size", str(tp)]
    return argv + list(extra)
