"""P14: names transformers 5 renamed are imported under their transformers 4 spelling, aliased back.

What: ``from transformers import PreTrainedConfig`` -> ``from transformers import PretrainedConfig
as PreTrainedConfig`` (also from ``transformers.configuration_utils``), so the code using the new
spelling stays untouched; an existing ``as`` alias is kept. ``transformers.PreTrainedConfig``
written out after ``import transformers`` is respelled ``transformers.PretrainedConfig``. Other
names in the statement stay as they are. One count per statement or attribute rewritten.

Why: vLLM 0.13.0 requires ``transformers>=4.56,<5`` (4.57.6 here); upstream vLLM requires
transformers 5, which renamed these classes and keeps the old names as aliases. ``RENAMES`` lists
only true renames, checked in both trees: transformers 5.20.2 defines ``Old = New`` in the same
module, and 4.57.6 defines ``Old`` where the import expects it.

When: the pin runs a transformers 4 (the one ``Pinned`` chose, as for config bridges) and a migrated
file (model, config bridge, processor) imports one of ``RENAMES``; the commonest is
``PreTrainedConfig``, in most upstream configs and many models.
"""

from __future__ import annotations

import libcst as cst

from .base import TRANSFORMERS_5, PatchContext
from .imports import ImportRedirectTransformer, Location, small_statements
from .syntax import dotted_name

ID = "P14"
NAME = "transformers-renames"
PINNED = ">=0"  # any pin: the transformers it runs with decides (relevant())

RENAMES: dict[tuple[str, str], str] = {
    ("transformers", "PreTrainedConfig"): "PretrainedConfig",
    ("transformers.configuration_utils", "PreTrainedConfig"): "PretrainedConfig",
    ("transformers", "PythonBackend"): "PreTrainedTokenizer",
    ("transformers", "TokenizersBackend"): "PreTrainedTokenizerFast",
    ("transformers", "TorchvisionBackend"): "BaseImageProcessorFast",
    ("transformers.tokenization_mistral_common", "MistralCommonBackend"): "MistralCommonTokenizer",
}
"""(module, transformers 5 name) -> the transformers 4 name of the same class."""


def relevant(source: str, context: PatchContext) -> bool:
    """Only files spelling one of the new names need this patch, and only when the pin runs a transformers 4."""
    return context.pinned_transformers < TRANSFORMERS_5 and any(name in source for _, name in RENAMES)


class Transformer(ImportRedirectTransformer):
    def visit_Module(self, node: cst.Module) -> None:
        # ``import a.b`` binds ``a`` and makes ``a.b`` reachable: both may prefix a renamed name.
        self._imported_modules = {
            prefix
            for statement in small_statements(node)
            if isinstance(statement, cst.Import)
            for alias in statement.names
            if alias.asname is None
            for prefix in _prefixes(dotted_name(alias.name) or "")
        }
        # ``transformers.PreTrainedConfig`` attributes need expressions visited, only then
        self.visits_expressions = any(module in self._imported_modules for module, _ in RENAMES)

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.Attribute:
        module = dotted_name(updated_node.value)
        new_name = RENAMES.get((module or "", updated_node.attr.value))
        if not new_name or module not in self._imported_modules:
            return updated_node
        self.count += 1
        return updated_node.with_changes(attr=cst.Name(new_name))

    def locate(self, module: str, name: str) -> Location:
        return module, RENAMES.get((module, name), name)


def _prefixes(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
