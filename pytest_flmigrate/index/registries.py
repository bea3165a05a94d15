"""vLLM's and transformers' registries, read from source.

- the model registry (``vllm/model_executor/models/registry.py``): architecture -> (module, class)
- vLLM's config registry (``_CONFIG_REGISTRY`` in ``vllm/transformers_utils/config.py``):
  model_type -> config class name
- transformers' ``CONFIG_MAPPING_NAMES``: model_type -> config class name
- transformers' ``MODEL_*_MAPPING_NAMES``: architecture class -> the model_types naming it
- vLLM's config hooks (``MODELS_CONFIG_MAP`` in ``vllm/model_executor/models/config.py``):
  architecture -> the class whose ``verify_and_update_*config`` adjusts the configs at startup
- the model types vLLM serves with multi-head latent attention (``is_deepseek_mla``: the text
  config's ``model_type`` in a literal tuple, in ``vllm/config/model.py`` or, where the model config
  delegates, ``vllm/transformers_utils/model_arch_config_convertor.py``)
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate.index.records import TreeIndex
from pytest_flmigrate.index.symbols import parse_module

MODEL_REGISTRY = Path("model_executor/models/registry.py")
CONFIG_REGISTRY = Path("transformers_utils/config.py")
CONFIG_HOOKS_MODULE = "vllm.model_executor.models.config"
MLA_TYPE_FILES = (Path("config/model.py"), Path("transformers_utils/model_arch_config_convertor.py"))
TRANSFORMERS_CONFIG_MAPPING = Path("models/auto/configuration_auto.py")
# transformers >= 5 generates the table into this module; configuration_auto.py imports and amends it.
TRANSFORMERS_AUTO_MAPPINGS = Path("models/auto/auto_mappings.py")
TRANSFORMERS_MODEL_MAPPINGS = Path("models/auto/modeling_auto.py")
# Registry tables that alias other tables or route to the Transformers backend.
_SKIPPED_TABLES = {"_VLLM_MODELS", "_TRANSFORMERS_SUPPORTED_MODELS", "_TRANSFORMERS_BACKEND_MODELS"}
#: Registry tables of pooling models -> the pooling task their outputs answer (vLLM's ``/pooling``
#: ``task``; the same names from vLLM 0.11 on).
POOLING_TASKS = {
    "_EMBEDDING_MODELS": "embed",
    "_CROSS_ENCODER_MODELS": "classify",
    "_SEQUENCE_CLASSIFICATION_MODELS": "classify",
    "_LATE_INTERACTION_MODELS": "token_embed",
    "_TOKEN_CLASSIFICATION_MODELS": "token_classify",
    "_REWARD_MODELS": "token_classify",
}


@dataclass(frozen=True)
class Architecture:
    name: str
    module: str  # as written in the registry: "qwen3_5" or "vllm.models.kimi_k3"
    class_name: str
    table: str  # e.g. "_MULTIMODAL_MODELS"

    @property
    def is_multimodal(self) -> bool:
        return self.table == "_MULTIMODAL_MODELS"

    @property
    def pooling_task(self) -> str | None:
        """The pooling task of a pooling model's architecture (``embed``, ``token_classify``...), else None."""
        return POOLING_TASKS.get(self.table)

    @property
    def dotted_module(self) -> str:
        if "." in self.module:
            return self.module
        return f"vllm.model_executor.models.{self.module}"


def _literal(node: ast.AST):
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None


def model_registry(vllm_dir: Path) -> list[Architecture]:
    """Every architecture the tree's model registry lists, in file order."""
    tree = parse_module(vllm_dir / MODEL_REGISTRY)
    if tree is None:
        return []
    found: list[Architecture] = []
    for node in tree.body:
        target, value = _assignment(node)
        if not (target and target.endswith("_MODELS") and isinstance(value, ast.Dict)):
            continue
        if target in _SKIPPED_TABLES:
            continue
        for key, entry in zip(value.keys, value.values):
            name, location = _literal(key) if key else None, _literal(entry)
            if (
                isinstance(name, str)
                and isinstance(location, tuple)
                and len(location) == 2
                and all(isinstance(part, str) for part in location)
            ):
                found.append(Architecture(name, location[0], location[1], target))
    return found


def _assignment(node: ast.stmt) -> tuple[str | None, ast.AST | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def mla_model_types(vllm_dir: Path) -> frozenset[str]:
    """The model types the tree serves with multi-head latent attention: the literal tuple its
    ``is_deepseek_mla`` tests the text config's ``model_type`` against (an EAGLE draft's inner
    model's tuple is another test and left out)."""
    found: set[str] = set()
    for relative in MLA_TYPE_FILES:
        tree = parse_module(vllm_dir / relative) if (vllm_dir / relative).is_file() else None
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.FunctionDef) and node.name == "is_deepseek_mla":
                found.update(_types_tested(node))
    return frozenset(found)


def _types_tested(function: ast.FunctionDef) -> set[str]:
    """The strings of ``<x>.hf_text_config.model_type in (...)`` tests in ``function``."""
    types: set[str] = set()
    for node in ast.walk(function):
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In)):
            continue
        left = node.left
        if not (
            isinstance(left, ast.Attribute)
            and left.attr == "model_type"
            and isinstance(left.value, ast.Attribute)
            and left.value.attr == "hf_text_config"
        ):
            continue
        values = _literal(node.comparators[0])
        if isinstance(values, tuple | list | set | frozenset):
            types.update(value for value in values if isinstance(value, str))
    return types


def vllm_config_registry(vllm_dir: Path) -> dict[str, str]:
    """model_type -> config class name from vLLM's ``_CONFIG_REGISTRY``."""
    tree = parse_module(vllm_dir / CONFIG_REGISTRY)
    if tree is None:
        return {}
    for node in tree.body:
        target, value = _assignment(node)
        if target == "_CONFIG_REGISTRY" and isinstance(value, (ast.Call, ast.Dict)):
            return _mapping_of(value)
    return {}


def config_hooks_file(index: TreeIndex | None) -> Path | None:
    """The file of vLLM's config hooks in the tree ``index`` indexes, if it has one."""
    info = index.modules.get(CONFIG_HOOKS_MODULE) if index is not None else None
    return index.root / info.path if index is not None and info is not None else None


def index_config_hooks(index: TreeIndex | None) -> dict[str, str]:
    """architecture -> config hook class name from ``MODELS_CONFIG_MAP`` of the vLLM tree ``index``
    indexes ({} without one)."""
    path = config_hooks_file(index)
    return _config_hooks_in(path) if path is not None else {}


def _config_hooks_in(path: Path) -> dict[str, str]:
    tree = parse_module(path)
    for node in tree.body if tree is not None else ():
        target, value = _assignment(node)
        if target == "MODELS_CONFIG_MAP" and isinstance(value, ast.Dict):
            return {
                key.value: entry.id
                for key, entry in zip(value.keys, value.values)
                if isinstance(key, ast.Constant) and isinstance(key.value, str) and isinstance(entry, ast.Name)
            }
    return {}


def _mapping_of(value: ast.AST) -> dict[str, str]:
    mapping: dict[str, str] = {}
    if isinstance(value, ast.Dict):
        for key, entry in zip(value.keys, value.values):
            if key is None:
                mapping.update(_mapping_of(entry))
            elif isinstance(_literal(key), str) and isinstance(_literal(entry), str):
                mapping[_literal(key)] = _literal(entry)
        return mapping
    if isinstance(value, ast.Call):
        for keyword in value.keywords:
            if keyword.arg is None:
                mapping.update(_mapping_of(keyword.value))
            elif isinstance(_literal(keyword.value), str):
                mapping[keyword.arg] = _literal(keyword.value)
        for argument in value.args:
            pairs = _literal(argument)
            if isinstance(pairs, (list, tuple)):
                mapping.update(pair for pair in pairs if isinstance(pair, tuple) and len(pair) == 2)
            elif isinstance(argument, ast.Dict):
                mapping.update(_mapping_of(argument))
    return mapping


def transformers_config_mapping(transformers_dir: Path) -> dict[str, str]:
    """model_type -> config class name from transformers' ``CONFIG_MAPPING_NAMES``.

    Before transformers 5 the table is a literal in ``configuration_auto.py``; from 5 on it is
    generated into ``auto_mappings.py`` and ``configuration_auto.py`` adds entries to it
    (``CONFIG_MAPPING_NAMES.update({...})`` and a reassignment that spreads the old table).
    """
    mapping: dict[str, str] = {}
    for relative in (TRANSFORMERS_AUTO_MAPPINGS, TRANSFORMERS_CONFIG_MAPPING):
        path = transformers_dir / relative
        tree = parse_module(path) if path.exists() else None
        for node in tree.body if tree is not None else ():
            target, value = _assignment(node)
            if target == "CONFIG_MAPPING_NAMES" and value is not None:
                mapping.update(_mapping_of(value))
            elif (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Attribute)
                and node.value.func.attr == "update"
                and isinstance(node.value.func.value, ast.Name)
                and node.value.func.value.id == "CONFIG_MAPPING_NAMES"
            ):
                for argument in node.value.args:
                    mapping.update(_mapping_of(argument))
    return mapping


def transformers_architecture_mapping(transformers_dir: Path) -> dict[str, set[str]]:
    """architecture class -> every model_type whose ``MODEL_*_MAPPING_NAMES`` entry names it."""
    path = transformers_dir / TRANSFORMERS_MODEL_MAPPINGS
    tree = parse_module(path) if path.exists() else None
    found: dict[str, set[str]] = {}
    for node in tree.body if tree is not None else ():
        target, value = _assignment(node)
        if target and target.startswith("MODEL_") and target.endswith("_MAPPING_NAMES") and value is not None:
            for model_type, architecture in _mapping_of(value).items():
                found.setdefault(architecture, set()).add(model_type)
    return found
