"""P30: the config hooks step 4 copies run at a pin that calls only ``verify_and_update_config``.

What: in the compat copy of upstream's config hooks (``vllm.model_executor.models.config``, the
classes ``MODELS_CONFIG_MAP`` names for the migrated architectures), the base the copies import
from the pin points at ``vllm_fl.compat.config_hook``, which step 4 writes beside them
(``pytest_flmigrate/autofix/shims/config_hook.py``)::

    from vllm.model_executor.models.config import VerifyAndUpdateConfig
    # becomes
    from vllm_fl.compat.config_hook import VerifyAndUpdateConfig

One count per import statement.

Why: upstream calls two hooks of an architecture's entry at startup, the model config's
(``verify_and_update_model_config``, while it builds the model config) and the engine config's
(``verify_and_update_config``); a pin whose base has only the second never calls the first, and
its base raises where a hook defines only the first. The shim's base runs the model hook from
the hook the pin calls, once per model config and before the class's own, and does nothing where
a class defines neither, as upstream's base does. Step 5 registers each copied hook in the pin's
``MODELS_CONFIG_MAP`` for its architecture.

When: keyed by the trees: wherever the pin's ``VerifyAndUpdateConfig`` lacks
``verify_and_update_model_config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_flmigrate.index.registries import CONFIG_HOOKS_MODULE

from .translation import Api, ShimRedirect, Translation, Translations, Uses, accepted

if TYPE_CHECKING:
    from pytest_flmigrate.index.resolve import Resolver

ID = "P30"
NAME = "config-hooks"
PINNED = ">=0"  # keyed by the trees: pin_gap

BASE = "VerifyAndUpdateConfig"
MODEL_HOOK = "verify_and_update_model_config"
APIS = (Api(BASE, (CONFIG_HOOKS_MODULE,)),)
SHIM = "config_hook"
"""``pytest_flmigrate/autofix/shims/config_hook.py``, written as ``vllm_fl/compat/config_hook.py``."""

TRANSLATION = Translations(tuple(Translation(api, Uses, accepted, accepted) for api in APIS))
"""The shim's base takes upstream's subclasses as written: no use is refused."""
relevant, refusal, rewritten_imports = TRANSLATION.relevant, TRANSLATION.refusal, TRANSLATION.rewritten_imports


def pin_gap(pinned: Resolver) -> str | None:
    """None where the pin's hook base lacks the model config's hook (the pin never calls it)."""
    if pinned.resolve(CONFIG_HOOKS_MODULE, BASE) is None:
        return None
    if pinned.find_member(CONFIG_HOOKS_MODULE, BASE, MODEL_HOOK) is None:
        return None
    return f"the pin's {CONFIG_HOOKS_MODULE}.{BASE} has {MODEL_HOOK}"


class Transformer(ShimRedirect):
    translation = TRANSLATION
    shim = SHIM
