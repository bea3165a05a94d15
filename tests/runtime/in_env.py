"""One short Python process in a provisioned env, with vLLM's environment and a scratch folder removed after."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pytest_flmigrate import envs
from pytest_flmigrate.servers import procs


def run_in_env(python: Path | str, *args: str, label: str, extra_env: dict[str, str] | None = None) -> str:
    """``python *args`` (envs.vllm_env plus ``extra_env``); its stdout. A failure is an assertion
    naming the end of its stderr."""
    scratch = procs.scratch_dir(label)
    try:
        result = subprocess.run(
            [str(python), *args],
            env={**envs.vllm_env(scratch), **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        procs.remove_scratch(scratch)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
