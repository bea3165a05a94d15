"""P2: imports of modules and names this migration provides in the plugin are redirected there.

What: ``from vllm.transformers_utils.configs.step3p5 import Step3p5Config`` ->
``from vllm_fl.configs.step3p5 import Step3p5Config`` (the module is a key of the context's
``module_map``: config bridges, migrated model files, new sibling modules); a name listed in
``name_map`` moves alone, splitting the statement::

    from transformers import Qwen3_5Config, PretrainedConfig
    # becomes
    from transformers import PretrainedConfig
    from vllm_fl.configs.qwen3_5 import Qwen3_5Config

``import M as x`` of a mapped module becomes ``import N as x``; an undotted ``import M`` becomes
``import N as M``. A dotted ``import a.b.c`` without ``as`` is left alone (the code spells the full
path, so only a rewrite of every use would be safe). Relative imports are P1's. One count per
statement.

Why: the pinned vLLM lacks these modules (e.g. configs of models newer than the pin) or the
pinned transformers lacks the config class; the migration writes them into the plugin, and the
migrated code must import the plugin's copy.

When: a migrated file imports a module or name that the migration also writes (every config
bridge, every model file of a multi-file model unit), whatever the pin.
"""

from __future__ import annotations

import libcst as cst

from .imports import ImportRedirectTransformer, Location, module_location
from .syntax import dotted, dotted_name

ID = "P2"
NAME = "redirect-imports"
PINNED = ">=0"  # every pin: the map comes from what this migration writes


class Transformer(ImportRedirectTransformer):
    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import:
        names = [self._redirect_alias(alias) for alias in updated_node.names]
        if all(new is old for new, old in zip(names, updated_node.names)):
            return updated_node
        self.count += 1
        return updated_node.with_changes(names=names)

    def locate(self, module: str, name: str) -> Location:
        moved = self.context.name_map.get((module, name))
        return (moved, name) if moved else module_location(self.context.module_map, module, name)

    def _redirect_alias(self, alias: cst.ImportAlias) -> cst.ImportAlias:
        module = dotted_name(alias.name) or ""
        mapped = self.context.module_map.get(module)
        if not mapped:
            return alias
        if alias.asname:
            return alias.with_changes(name=dotted(mapped))
        if "." in module:
            return alias
        return alias.with_changes(name=dotted(mapped), asname=cst.AsName(name=cst.Name(module)))
