"""P35: upstream's ``PrefillPrefixLMAttention`` becomes its port for the pin.

What: a file importing ``PrefillPrefixLMAttention`` from upstream's attention package imports it
from ``vllm_fl.compat.prefix_lm_attention``, a module step 4 writes beside the migrated files
(``pytest_flmigrate/autofix/shims/prefix_lm_attention.py``)::

    from vllm.model_executor.layers.attention import PrefillPrefixLMAttention
    # becomes
    from vllm_fl.compat.prefix_lm_attention import PrefillPrefixLMAttention

One count per import statement. A file deriving its own class from it is refused at step 4 with
the line (a subclass may override the method the port applies upstream's scheduling policy in).

Why: upstream's Prefix-LM layer (HRM-Text) is decoder attention on the encoder-only backend
wrapper, so prefill runs non-causally while a KV cache is kept, and it tags its KV cache spec
``non_causal``, on which upstream's engine core turns chunked prefill and prefix caching off before
building the scheduler. Its copy cannot be made (the pin's ``get_attn_backend`` requires a block
size, upstream's reads ``AttentionConfig`` fields the pin lacks), and a copy working alone would be
wrong: the pin's ``FullAttentionSpec`` has no ``non_causal`` and the pin's engine would chunk the
bidirectional prefill and reuse its blocks as a causal prefix. The port builds the layer from the
pin's own pieces (``get_attn_backend`` for decoder attention, ``create_encoder_only_attention_backend``,
``Attention(attn_backend=...)``) and applies upstream's scheduling policy on the engine core's
config when the pin asks it for its KV cache spec (before the scheduler exists); where the worker
holds a copy of the config, it refuses at start unless both are off.

When: files importing upstream's class, at a pin lacking it and taking the port (step 4 checks
the port's imports and calls against the pin: it is written on the 0.13 classes).
"""

from __future__ import annotations

import libcst as cst

from .translation import Api, ShimRedirect, Translation, Uses, accepted, api_gap

ID = "P35"
NAME = "prefix-lm-attention"
PINNED = ">=0"  # keyed by the trees: pin_gap, and step 4 checks the port against the pin

API = Api(
    "PrefillPrefixLMAttention",
    (
        "vllm.model_executor.layers.attention.prefill_prefix_lm_attention",
        "vllm.model_executor.layers.attention",
    ),
)
SHIM = "prefix_lm_attention"
"""``pytest_flmigrate/autofix/shims/prefix_lm_attention.py``, written as ``vllm_fl/compat/prefix_lm_attention.py``."""


def _subclassed(uses: Uses) -> tuple[cst.CSTNode, str] | None:
    """A subclass may override ``get_kv_cache_spec``, where the port applies upstream's scheduling
    policy (and upstream's spec has a field the pin's lacks): left to the user."""
    if uses.bases:
        return uses.bases[0], "subclassed; the port applies upstream's scheduling policy in get_kv_cache_spec"
    return None


TRANSLATION = Translation(API, Uses, _subclassed, accepted)
"""The port takes upstream's constructor calls as they are; a subclass is refused."""
relevant, refusal, rewritten_imports = TRANSLATION.relevant, TRANSLATION.refusal, TRANSLATION.rewritten_imports
pin_gap = api_gap(TRANSLATION.apis)


class Transformer(ShimRedirect):
    translation = TRANSLATION
    shim = SHIM
