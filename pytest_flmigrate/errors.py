"""The one error type users see: a short actionable line first, detail after."""

from __future__ import annotations


class FlmigrateError(Exception):
    """A failure the user can act on.

    ``message`` is one line that names what is wrong and how to fix it; ``detail`` holds
    whatever helps beyond that (tool output, candidate lists) and is printed after it.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail.strip()

    def __str__(self) -> str:
        return f"{self.message}\n{self.detail}" if self.detail else self.message


class EnvironmentProblem(FlmigrateError):
    """What the env of ``--vllm-python`` lacks (no vLLM, no pytest, the plugin not installed), not a
    fault of the port: it fails the steps that run there, and blocks only the steps that need that env."""
