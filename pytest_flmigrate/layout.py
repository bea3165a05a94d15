"""What every part of the tool agrees on about a plugin checkout and a model's name (stdlib only:
the plugin module reads it at load)."""

from __future__ import annotations

import re

#: The plugin's package (``vllm_fl``): relative imports in its files resolve against it.
PLUGIN_PACKAGE = "vllm_fl"
#: The file whose ``register_model()`` registers the migrated architectures (step 5).
REGISTRATION_FILE = f"{PLUGIN_PACKAGE}/__init__.py"
#: A model name: its upstream module stem (qwen3_5, AXK1); --model is checked against it.
MODEL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
#: Upstream module prefixes whose new modules are migrated, and where they land.
MIGRATABLE = {
    "vllm.model_executor.models.": f"{PLUGIN_PACKAGE}.models.",
    "vllm.models.": f"{PLUGIN_PACKAGE}.models.",
    "vllm.transformers_utils.configs.": f"{PLUGIN_PACKAGE}.configs.",
}


def plugin_module_for(upstream_module: str) -> str | None:
    """Where an upstream module lands in the plugin (None: it is not migrated)."""
    for prefix, plugin_prefix in MIGRATABLE.items():
        if upstream_module.startswith(prefix):
            return plugin_prefix + upstream_module[len(prefix) :]
    return None


#: ``Patch.source`` of the catalog's patches (a plugin's own patch has its module's path there).
CATALOG_SOURCE = "catalog"
