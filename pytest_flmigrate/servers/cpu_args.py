"""The engine arguments vLLM gets on a CPU machine, defined once for the runtime tests and the benchmarks.

The tool adds no CPU knobs of its own (on a GPU vLLM's defaults and ``--tp`` stand); on CPU these
go in ``--serve-args`` and ``--bench-args``, and into a GT server's ``serve_args``. Why each
(docs/cpu-vllm.md):

- ``--dtype float32``: vLLM's CPU build needs it, and greedy tokens on random weights flip in bfloat16;
- ``--max-model-len 512``: the prompts are short, and a smaller KV cache fits beside other servers;
- ``--enforce-eager``: startup to ``/health`` in about 17 s instead of 25-45 s;
- ``--compilation-config '{"custom_ops":["-rms_norm"]}'``: ``RMSNorm`` runs its native forward.
  vLLM 0.13.0's CPU ``rms_norm`` kernel reads a strided input as if its rows were contiguous, so a
  model that norms q and k as slices of its qkv output (OLMoE) diverges from upstream; vLLM 0.32
  already runs the native forward on CPU;
- ``--no-enable-prefix-caching``: vLLM 0.32's CPU platform turns prefix caching off for an MLA
  model after a hybrid (Mamba) model's config has sized its Mamba blocks for it, and its own
  validation then refuses the server (``--mamba-block-size can only be set with
  --enable-prefix-caching``); the judge's prompts share no prefix worth caching.
"""

from __future__ import annotations

import shlex

CPU_ARGS: tuple[str, ...] = (
    "--dtype",
    "float32",
    "--max-model-len",
    "512",
    "--enforce-eager",
    "--compilation-config",
    '{"custom_ops":["-rms_norm"]}',
    "--no-enable-prefix-caching",
)
#: The same as one ``--serve-args=``/``--bench-args=`` value (settings split it with shlex).
CPU_ARGS_TEXT = shlex.join(CPU_ARGS)
