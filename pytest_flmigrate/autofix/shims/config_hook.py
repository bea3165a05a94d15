# SPDX-License-Identifier: Apache-2.0
"""Upstream vLLM's base of config hooks (``MODELS_CONFIG_MAP``), for a pin that calls only one hook.

Written into the plugin by pytest-flmigrate (catalog P30) for migrated architectures that upstream
adjusts at startup. Upstream calls a hook's ``verify_and_update_model_config(model_config)`` while
it builds the model config, then its ``verify_and_update_config(vllm_config)``; a pin that knows
only the second (vLLM 0.13) would skip the first, whose settings (bidirectional attention, an
embedding size) the model relies on. On this base, the hook the pin calls runs the model hook
first, once per model config, and the base's own hooks do nothing, as upstream's do.
"""

from __future__ import annotations

from typing import Any

_DONE = "_flmigrate_model_hook_done"


def _run_model_hook(cls: type, vllm_config: Any) -> None:
    """``cls``'s model hook on the model config of ``vllm_config``, once per model config."""
    model_config = vllm_config.model_config
    if not getattr(model_config, _DONE, False):
        cls.verify_and_update_model_config(model_config)  # type: ignore[attr-defined]
        setattr(model_config, _DONE, True)


def _after_model_hook(update: Any) -> classmethod:
    """``verify_and_update_config`` that first runs the class's model hook, then ``update``."""
    function = update.__func__ if isinstance(update, (staticmethod, classmethod)) else update
    takes_class = isinstance(update, classmethod)

    def verify_and_update_config(cls, vllm_config) -> None:
        _run_model_hook(cls, vllm_config)
        if takes_class:
            function(cls, vllm_config)
        else:
            function(vllm_config)

    return classmethod(verify_and_update_config)


class VerifyAndUpdateConfig:
    @classmethod
    def verify_and_update_config(cls, vllm_config) -> None:
        _run_model_hook(cls, vllm_config)

    @staticmethod
    def verify_and_update_model_config(model_config) -> None:
        return

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("verify_and_update_config")
        if own is not None:
            setattr(cls, "verify_and_update_config", _after_model_hook(own))  # noqa: B010 - a class attribute
