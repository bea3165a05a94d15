"""Fixtures of the runtime tier: the provisioned CPU envs, a tiny checkpoint, and one migrated tree.

Every fixture skips, naming the command, when the envs are not provisioned
(scripts/provision-cpu-envs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_flmigrate import envs
from pytest_flmigrate.servers.ports import free_port
from tests.e2e.sshd_server import sshd  # noqa: F401 - the real sshd fixture, for GT over SSH
from tests.fixtures.missing import skip_or_fail
from tests.runtime.in_env import run_in_env
from tests.runtime.suite_run import ARCH, flmigrate, plugin_tree


def python_or_skip(name: str) -> Path:
    python = envs.env_python(name)
    if python is None:
        skip_or_fail(envs.missing_env_reason(name))
    return python


@pytest.fixture(scope="session")
def pinned_python() -> Path:
    return python_or_skip(envs.pinned_env())


@pytest.fixture(scope="session")
def upstream_python() -> Path:
    return python_or_skip(envs.upstream_env())


@pytest.fixture(scope="session")
def checkpoint(pinned_python, tmp_path_factory) -> Path:
    """A tiny random Qwen2 checkpoint whose config names MiMoForCausalLM (tiny/qwen2_checkpoint.py)."""
    out = tmp_path_factory.mktemp("ckpt") / "tiny-mimo"
    run_in_env(
        pinned_python, str(envs.TINY_CHECKPOINT_SCRIPT), str(out), "--arch", ARCH, "--model-type", "qwen2", label="ckpt"
    )
    return out


@pytest.fixture(scope="session")
def migrated(pinned_python, upstream_python, checkpoint, tmp_path_factory):
    """One run of every step, 1 to 11, on a fresh tree: step 11 (all prompts: the multimodal ones
    skip, mimo being text-only) against a GT server that ``--gt-python`` starts from the upstream
    env on the same checkpoint. Later tests reuse the migrated tree, its env and its saved E2E
    results."""
    tree, python = plugin_tree(tmp_path_factory.mktemp("full"), pinned_python)
    port = free_port()
    run = flmigrate(
        tree, python, "--gt-python", str(upstream_python), "--e2e-mode", "all", checkpoint=checkpoint, port=port
    )
    return tree, python, port, run
