"""Real vLLM on both sides (marker ``runtime``): the GT server of the upstream CPU env started over a
real sshd (marker ``remote``) against a server of the pinned CPU env, the same tiny checkpoint.

This proves the E2E library end to end on real servers: the request and answer shapes of two
vLLM versions (token ids, top logprobs), the remote lifecycle of a real GT server, and MATCH
on the built-in text prompts. The pinned server here is started by the library's own
``LocalGT`` (no plugin involved); the migrated-model run through steps 10 and 11 belongs to
the runtime integration. Skips, naming the command, when the envs are not provisioned.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from pytest_flmigrate.e2e.gt_config import GTConfig
from pytest_flmigrate.e2e.local_gt import LocalGT
from pytest_flmigrate.e2e.prompts import builtin_prompts, select
from pytest_flmigrate.e2e.remote import RemoteGT
from pytest_flmigrate.e2e.results import ResultStore
from pytest_flmigrate.e2e.runner import Runner, ServerRef
from pytest_flmigrate.runtime import envs
from tests.e2e.remote_helpers import free_port, pid_alive, wait_until

pytestmark = [pytest.mark.runtime, pytest.mark.remote]
SERVE_ARGS = ("--dtype", "float32", "--max-model-len", "512")


def env_python(name: str):
    python = envs.env_python(name)
    if python is None:
        pytest.skip(envs.missing_env_reason(name))
    return python


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    python = env_python(envs.PINNED_ENV)
    out = tmp_path_factory.mktemp("ckpt") / "tiny-qwen2"
    scratch = tmp_path_factory.mktemp("ckpt-scratch")
    subprocess.run([str(python), str(envs.TINY_CHECKPOINT_SCRIPT), str(out)], env=envs.vllm_env(scratch),
                   cwd=scratch, check=True, capture_output=True, timeout=600)
    return out


def test_real_gt_over_ssh_matches_a_pinned_server(sshd, checkpoint, tmp_path):
    upstream, pinned = env_python(envs.UPSTREAM_ENV), env_python(envs.PINNED_ENV)
    short = Path(tempfile.mkdtemp(prefix="flm-e2e-"))  # vLLM's IPC socket paths must stay under 108 bytes
    local_env = envs.vllm_env(short / "local", base={})
    local_env.pop("VLLM_RPC_BASE_PATH")  # LocalGT makes its own short one
    local = LocalGT(str(pinned), str(checkpoint), log_path=tmp_path / "local.log", scratch=tmp_path / "local",
                    serve_args=SERVE_ARGS, env=local_env)
    gt_env = envs.vllm_env(short / "gt", base={})
    config = GTConfig(key_file=sshd.client_key, known_hosts=sshd.known_hosts, connect_timeout=5,
                      python=str(upstream), model=str(checkpoint), host="127.0.0.1", port=free_port(),
                      serve_args=SERVE_ARGS, env=gt_env, state_dir=str(tmp_path / "gt-state"), health_timeout=400)
    gt = RemoteGT(sshd.target, config, model=str(checkpoint))
    started = None
    try:
        local.start()
        started = gt.start()  # both load at once
        gt_seconds = gt.wait_healthy(interval=1.0)
        local_seconds = local.wait_healthy(timeout=400)
        assert gt.status() == "running"
        runner = Runner(ResultStore(tmp_path / "e2e"), phase="all", token_match_count=32, max_tokens=48)
        servers = {"gt": lambda: ServerRef(gt.url, "--gt-ssh"), "local": lambda: local.url}
        t0 = time.monotonic()
        outcomes = [runner.run(prompt, servers) for prompt in select(builtin_prompts(), "text")]
        request_seconds = time.monotonic() - t0
        report = "\n".join(o.message() for o in outcomes)
        assert all(o.comparison.verdict == "match" for o in outcomes), report
        saved = runner.store.load("gt", outcomes[0].prompt).generation
        assert saved.token_ids and len(saved.top_logprobs[0]) == 5 and saved.prompt_token_ids
        assert runner.store.load("local", outcomes[0].prompt).generation.prompt_token_ids == saved.prompt_token_ids
        print(f"GT healthy after {gt_seconds:.0f} s, local after {local_seconds:.0f} s; 10 requests in {request_seconds:.1f} s")
    finally:
        stopped = gt.stop()
        gt.close()
        local.stop()
        shutil.rmtree(short, ignore_errors=True)
    assert stopped in ("stopped", "killed")
    assert started is not None and wait_until(lambda: not pid_alive(started.pid), 30)
