"""vLLM's config objects, known by the names code holds them under (``cache_config``,
``model_config``, ``vllm_config``): what the review and the backports check field reads against."""

from __future__ import annotations

import re

from pytest_flmigrate.index.resolve import Resolver

CONFIG_PACKAGE = "vllm.config"
_CONFIG_CLASS = re.compile(r"\b([A-Z]\w*Config)\b")
# config-object names that are polymorphic (a base class whose subclasses add fields)
_POLYMORPHIC = {"quant_config", "quantization_config"}


def config_object_classes(resolver: Resolver) -> dict[str, tuple[str, str]]:
    """Attribute/variable names of vLLM config objects -> (module, class) in ``resolver``'s vLLM.

    Read from ``VllmConfig``'s fields (``cache_config: CacheConfig`` ...) and those of the config
    classes it holds; ``vllm_config`` itself is ``VllmConfig``.
    """
    found: dict[str, tuple[str, str]] = {}
    root = resolver.resolve(CONFIG_PACKAGE, "VllmConfig")
    if root is None or root.kind != "class":
        return found
    found["vllm_config"] = (root.module, root.name)
    queue = [(root.module, root.name)]
    seen = set()
    while queue:
        module, name = queue.pop()
        if (module, name) in seen:
            continue
        seen.add((module, name))
        info = resolver.module(module)
        cls = info.classes.get(name) if info is not None else None
        for item in cls.fields if cls else ():
            if item.name in _POLYMORPHIC or not item.name.endswith("_config"):
                continue
            for class_name in _CONFIG_CLASS.findall(item.annotation or ""):
                symbol = resolver.resolve(module, class_name) or resolver.resolve(CONFIG_PACKAGE, class_name)
                if symbol is not None and symbol.kind == "class" and symbol.module.startswith(CONFIG_PACKAGE):
                    found.setdefault(item.name, (symbol.module, symbol.name))
                    if name == root.name:
                        queue.append((symbol.module, symbol.name))
                    break
    return found
