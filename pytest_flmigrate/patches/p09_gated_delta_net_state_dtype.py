"""P9: calls to ``gated_delta_net_state_dtype`` lose the ``mamba_ssm_cache_dtype`` argument.

What: in any call whose callee is an attribute named in ``DROPPED_ARGUMENTS``, the argument
the pin lacks goes, whether passed third by position or by keyword::

    return MambaStateDtypeCalculator.gated_delta_net_state_dtype(
        vllm_config.model_config.dtype,
        vllm_config.cache_config.mamba_cache_dtype,
        vllm_config.cache_config.mamba_ssm_cache_dtype,
    )
    # becomes
    return MambaStateDtypeCalculator.gated_delta_net_state_dtype(
        vllm_config.model_config.dtype,
        vllm_config.cache_config.mamba_cache_dtype,
    )

A call with ``*args``/``**kwargs`` or more positional arguments than the upstream signature is
left alone. One count per call.

Why: the pinned signature is ``(cls, model_dtype, mamba_cache_dtype)``; upstream added
``mamba_ssm_cache_dtype="auto"``. With ``"auto"`` upstream returns the same dtypes as the pin;
any other value (a separate ssm-state dtype) has no equivalent in the pin's gated delta net
layers, so dropping it is the only 0.13.0 spelling. (The catalog's example passes
``dt_dtype=``; the real upstream call is the positional one above.)

When: hybrid models with gated delta net layers (Qwen3.5, Qwen3-Next, Olmo hybrid, MiniCPM-V 4.6).
"""

from __future__ import annotations

import libcst as cst

from .base import PatchContext, PatchTransformer
from .syntax import drop_items

ID = "P9"
NAME = "gated-delta-net-state-dtype"
PINNED = "<0.15"  # the pins lacking the API: 0.13.0 does, 0.15.0 and later have it

DROPPED_ARGUMENTS: dict[str, tuple[int, str]] = {
    "gated_delta_net_state_dtype": (2, "mamba_ssm_cache_dtype"),
}
"""Method name -> (position, keyword) of the upstream parameter the pin does not have."""


def relevant(source: str, context: PatchContext) -> bool:
    """Only files calling one of the listed methods can need this patch."""
    return any(name in source for name in DROPPED_ARGUMENTS)


class Transformer(PatchTransformer):
    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        func = updated_node.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in DROPPED_ARGUMENTS:
            return updated_node
        position, keyword = DROPPED_ARGUMENTS[func.attr.value]
        args = updated_node.args
        if any(arg.star for arg in args):
            return updated_node
        positional = [i for i, arg in enumerate(args) if arg.keyword is None]
        by_keyword = [i for i, arg in enumerate(args) if arg.keyword and arg.keyword.value == keyword]
        if len(positional) > position + 1:
            return updated_node
        drop = by_keyword or positional[position:]
        if not drop:
            return updated_node
        self.count += 1
        return updated_node.with_changes(args=drop_items(args, set(drop)))
