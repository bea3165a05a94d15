"""Config bridges: when the pinned side does not know the unit's ``model_type``.

The bridge is upstream's config module (from vLLM's ``transformers_utils/configs``, upstream's
transformers or a newer transformers release) copied into ``vllm_fl/configs/`` and patched like
any other file (P14 and P22 turn transformers 5 configs into ones the pinned transformers loads).
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_flmigrate.index.pinned import Pinned
from pytest_flmigrate.index.records import TreeIndex
from pytest_flmigrate.steps.discover import REMOTE_CODE, ModelUnit

PLUGIN_CONFIGS = "vllm_fl.configs"
# Modules model code imports config classes from, besides the defining module itself.
_REEXPORTING_MODULES = ("transformers", "vllm.transformers_utils.configs")


@dataclass(frozen=True)
class Bridge:
    upstream_module: str
    plugin_module: str
    model_type: str
    class_name: str
    classes: tuple[str, ...]  # every class the bridged module defines
    reason: str


def bridge_name(upstream_module: str, fallback: str) -> str:
    """File stem of the bridge: ``configuration_x`` -> ``x``; generic names -> ``fallback``."""
    parts = upstream_module.split(".")
    stem = parts[-1].removeprefix("configuration_")
    if stem in ("configs", "config", "configuration"):
        stem = parts[-2] if len(parts) > 1 and parts[-2] not in ("configs", "models") else fallback
    return stem


def decide_bridge(unit: ModelUnit, pinned: Pinned, source_index: TreeIndex | None) -> tuple[Bridge | None, str]:
    """The bridge the unit needs (or None) and the reason, for the report."""
    config = unit.config
    if config is None:
        if unit.config_from_checkpoint:
            return None, f"the config comes {REMOTE_CODE}: nothing to bridge"
        return None, "no config class resolved for this unit"
    known = pinned.known_model_types.get(config.model_type)
    if known:
        return None, f"model_type '{config.model_type}' is known to the pinned {known}"
    classes: tuple[str, ...] = (config.class_name,)
    if source_index is not None and config.module in source_index.modules:
        defined = source_index.modules[config.module].defines
        classes = tuple(name for name, kind in defined.items() if kind == "class")
    plugin_module = f"{PLUGIN_CONFIGS}.{bridge_name(config.module, unit.name)}"
    reason = (
        f"model_type '{config.model_type}' is unknown to pinned vLLM {pinned.vllm.version} and "
        f"transformers {pinned.transformers.version}; bridging {config.class_name} from "
        f"{config.module}"
    )
    return Bridge(config.module, plugin_module, config.model_type, config.class_name, classes, reason), reason


def bridge_name_map(bridge: Bridge) -> dict[tuple[str, str], str]:
    """Imports of the bridged classes through re-exporting packages (the defining module's
    package, ``transformers.models.x``, included) go to the bridge."""
    package = bridge.upstream_module.rpartition(".")[0]
    return {
        (module, name): bridge.plugin_module for module in (*_REEXPORTING_MODULES, package) for name in bridge.classes
    }
