"""Config bridges: when the pinned side does not know the unit's ``model_type``.

The bridge is upstream's config module (from vLLM's ``transformers_utils/configs``, upstream's
transformers or a newer transformers release) copied into ``vllm_fl/configs/`` and patched like
any other file (P14 and P22 turn transformers 5 configs into ones the pinned transformers loads).
Only a configuration module is ever copied: a config class upstream defines inside model code is
registered from the migrated model module itself (``in_place``), and one defined only under
``TYPE_CHECKING`` (a type stub of the checkpoint's own config) is not bridged at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_flmigrate.index.pinned import Pinned
from pytest_flmigrate.index.records import TreeIndex
from pytest_flmigrate.layout import plugin_module_for
from pytest_flmigrate.steps.discover import MODEL_MODULE, REMOTE_CODE, TYPE_CHECKING_ONLY, ModelUnit

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
    in_place: bool = False  # the class lives in migrated model code: registered from there, no file


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
    if config.defined == TYPE_CHECKING_ONLY:
        return None, (
            f"upstream defines {config.class_name} only under TYPE_CHECKING in {config.module} (a type "
            f"stub): the config comes {REMOTE_CODE}; nothing to bridge"
        )
    known = pinned.known_model_types.get(config.model_type)
    if known:
        return None, f"model_type '{config.model_type}' is known to the pinned {known}"
    unknown = (
        f"model_type '{config.model_type}' is unknown to pinned vLLM {pinned.vllm.version} and "
        f"transformers {pinned.transformers.version}"
    )
    if config.defined == MODEL_MODULE:
        plugin_module = plugin_module_for(config.module)
        assert plugin_module is not None, f"{config.module}: model code upstream is migratable"
        reason = (
            f"{unknown}; {config.class_name} is defined in upstream's model code ({config.module}): "
            f"registered from {plugin_module}, no bridge file"
        )
        return Bridge(
            config.module, plugin_module, config.model_type, config.class_name, (config.class_name,), reason, True
        ), reason
    classes: tuple[str, ...] = (config.class_name,)
    if source_index is not None and config.module in source_index.modules:
        defined = source_index.modules[config.module].defines
        classes = tuple(name for name, kind in defined.items() if kind == "class")
    plugin_module = f"{PLUGIN_CONFIGS}.{bridge_name(config.module, unit.name)}"
    reason = f"{unknown}; bridging {config.class_name} from {config.module}"
    return Bridge(config.module, plugin_module, config.model_type, config.class_name, classes, reason), reason


def bridge_name_map(bridge: Bridge) -> dict[tuple[str, str], str]:
    """Imports of the bridged classes through re-exporting packages (the defining module's
    package, ``transformers.models.x``, included) go to the bridge."""
    if bridge.in_place:
        return {}
    package = bridge.upstream_module.rpartition(".")[0]
    return {
        (module, name): bridge.plugin_module for module in (*_REEXPORTING_MODULES, package) for name in bridge.classes
    }
