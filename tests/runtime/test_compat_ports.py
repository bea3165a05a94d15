"""The compat ports step 4 writes (autofix/shims/) compute what upstream computes: the port run in
the pinned env, upstream's class in the upstream env, on the same inputs (CPU, real vLLM)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_flmigrate import envs
from pytest_flmigrate.patches.translation import SHIMS
from pytest_flmigrate.servers import procs

pytestmark = pytest.mark.runtime

#: The same checks on both sides; ``{imports}`` binds MMEncoderAttention and the backend enum.
MM_ENCODER_SCRIPT = """
import json
import numpy as np, torch
from vllm.config import VllmConfig, set_current_vllm_config
{imports}
cu = np.array([0, 3, 7, 12], dtype=np.int32)
device = torch.device("cpu")
out = {{}}
for name in ("TORCH_SDPA", "FLASH_ATTN", "ROCM_AITER_FA", "TRITON_ATTN"):
    backend = Backend[name]
    recomputed = MMEncoderAttention.maybe_recompute_cu_seqlens(backend, cu, 64, 1, device)
    out[name] = {{
        "max_seqlen": MMEncoderAttention.compute_max_seqlen(backend, cu),
        "seq_lens": MMEncoderAttention.maybe_compute_seq_lens(backend, cu, device),
        "cu_seqlens": recomputed.tolist(),
        "dtype": str(recomputed.dtype),
    }}
torch.manual_seed(0)
q, k, v = (torch.randn(1, 12, 4, 16) for _ in range(3))
with set_current_vllm_config(VllmConfig()):
    attention = MMEncoderAttention(4, 16, scale=0.25)
    output = attention(q, k, v, cu_seqlens=torch.from_numpy(cu), max_seqlen=torch.tensor(5), sequence_lengths=None)
out["forward"] = output.flatten().tolist()
print("RESULT " + json.dumps(out))
"""
UPSTREAM_IMPORTS = """
from vllm.model_executor.layers.attention.mm_encoder_attention import MMEncoderAttention
from vllm.v1.attention.backends.registry import AttentionBackendEnum as Backend
"""
PORT_IMPORTS = """
from mm_encoder_attention import MMEncoderAttention
from vllm.attention.backends.registry import AttentionBackendEnum as Backend
"""


def run_script(python: Path, script: str, cwd: Path) -> dict:
    scratch = procs.scratch_dir("port")
    try:
        done = subprocess.run(
            [str(python), "-c", script],
            env=envs.vllm_env(scratch),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        procs.remove_scratch(scratch)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_mm_encoder_attention_port_computes_what_upstream_computes(pinned_python, upstream_python, tmp_path):
    shutil.copy(SHIMS / "mm_encoder_attention.py", tmp_path / "mm_encoder_attention.py")
    ported = run_script(pinned_python, MM_ENCODER_SCRIPT.format(imports=PORT_IMPORTS), tmp_path)
    upstream = run_script(upstream_python, MM_ENCODER_SCRIPT.format(imports=UPSTREAM_IMPORTS), tmp_path)
    forward = ported.pop("forward"), upstream.pop("forward")
    assert ported == upstream
    assert ported["FLASH_ATTN"]["max_seqlen"] == 5 and ported["TORCH_SDPA"]["max_seqlen"] == 0
    assert forward[0] == pytest.approx(forward[1], abs=1e-5)
