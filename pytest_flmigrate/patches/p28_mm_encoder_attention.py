"""P28: upstream's ``MMEncoderAttention`` becomes its port for the pin.

What: a file importing ``MMEncoderAttention`` from upstream's module imports it from
``vllm_fl.compat.mm_encoder_attention``, a module step 4 writes beside the migrated files
(``pytest_flmigrate/autofix/shims/mm_encoder_attention.py``)::

    from vllm.model_executor.layers.attention.mm_encoder_attention import MMEncoderAttention
    # becomes
    from vllm_fl.compat.mm_encoder_attention import MMEncoderAttention

One count per import statement.

Why: upstream (0.31+) moved the class and gave it what encoders now call: three classmethods
computing the batch's sequence metadata (``compute_max_seqlen``, ``maybe_compute_seq_lens``,
``maybe_recompute_cu_seqlens``) and a ``sequence_lengths`` argument of ``forward``. vLLM 0.13's
class (``vllm.attention.layers.mm_encoder_attention``) has neither, and upstream's class cannot
be copied (it registers the op name the pin's registers, and its FlashInfer and FP8 paths call
kernels the pin lacks). The port subclasses the pin's class with upstream's code for every
backend the pin's class runs; FlashInfer, the only backend reading ``sequence_lengths``, has no
path in the pin's class, so the port refuses it at run time. A file that uses none of this gets
the same forward as the pin's class. The port is checked against upstream's class in both envs
(tests/runtime/test_compat_ports.py).

When: files importing upstream's ``MMEncoderAttention`` (vision and audio encoders: Kimi-K2.5,
GLM-OCR, Qwen2-VL and their relatives), at a pin lacking upstream's module and taking the port
(step 4 checks the port's imports and calls against the pin: it is written on the 0.13 class).
"""

from __future__ import annotations

from .translation import Api, ShimRedirect, Translation, Uses, accepted, api_gap

ID = "P28"
NAME = "mm-encoder-attention"
PINNED = ">=0"  # keyed by the trees: pin_gap, and step 4 checks the port against the pin

API = Api(
    "MMEncoderAttention",
    ("vllm.model_executor.layers.attention.mm_encoder_attention", "vllm.model_executor.layers.attention"),
)
SHIM = "mm_encoder_attention"
"""``pytest_flmigrate/autofix/shims/mm_encoder_attention.py``, written as ``vllm_fl/compat/mm_encoder_attention.py``."""

TRANSLATION = Translation(API, Uses, accepted, accepted)
"""The port takes upstream's uses of the class: none is refused."""
relevant, refusal, rewritten_imports = TRANSLATION.relevant, TRANSLATION.refusal, TRANSLATION.rewritten_imports
pin_gap = api_gap(TRANSLATION.apis)


class Transformer(ShimRedirect):
    translation = TRANSLATION
    shim = SHIM
