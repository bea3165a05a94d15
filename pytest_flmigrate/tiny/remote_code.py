"""A newer transformers' config module as a checkpoint's own code (host side, libcst, no torch).

A config class only a transformers release newer than upstream's defines is shipped inside the
tiny checkpoint: its ``configuration_*.py`` with every relative import made absolute
(``from ...configuration_utils import PreTrainedConfig`` -> ``from
transformers.configuration_utils import PreTrainedConfig``), except imports of other config
modules upstream's transformers lacks too, which are shipped beside it and imported as siblings
(``from .configuration_qwen3_5 import Qwen3_5TextConfig``), as transformers' dynamic modules
import a repository's files. ``config.json`` names the class in ``auto_map`` so that an env loads
it with ``trust_remote_code`` without upgrading its transformers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import libcst as cst

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index.symbols import absolute_module


def module_file(root: Path, module: str) -> Path:
    return root / Path(*module.split(".")).with_suffix(".py")


def config_code(root: Path, module: str, present: Callable[[str], bool]) -> dict[str, str]:
    """File name -> text of ``module`` (under the tree ``root``) and of the config modules it
    imports that ``present`` (upstream's transformers has the module) says are absent."""
    files: dict[str, str] = {}
    pending = [module]
    while pending:
        current = pending.pop(0)
        name = f"{current.rpartition('.')[2]}.py"
        if name in files:
            continue
        path = module_file(root, current)
        try:
            source = path.read_text(encoding="utf-8")
        except OSError:
            raise FlmigrateError(f"--tiny: {current} is not in {root} ({path} unreadable)") from None
        rewriter = _Imports(current.rpartition(".")[0], present)
        files[name] = cst.parse_module(source).visit(rewriter).code
        pending += [shipped for shipped in rewriter.shipped if f"{shipped.rpartition('.')[2]}.py" not in files]
    return files


def config_json(model_type: str, module: str, class_name: str, arch: str) -> str:
    """The ``config.json`` that makes ``AutoConfig`` load the shipped class."""
    stem = module.rpartition(".")[2]
    data = {"architectures": [arch], "auto_map": {"AutoConfig": f"{stem}.{class_name}"}, "model_type": model_type}
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


class _Imports(cst.CSTTransformer):
    """Relative imports made absolute; imports of absent config modules made sibling imports."""

    def __init__(self, package: str, present: Callable[[str], bool]) -> None:
        self.package = package
        self.present = present
        self.shipped: list[str] = []

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        level = len(updated_node.relative)
        dotted = _dotted(updated_node.module) if updated_node.module is not None else None
        absolute = absolute_module(self.package, level, dotted)
        if absolute.rpartition(".")[2].startswith("configuration_") and not self.present(absolute):
            self.shipped.append(absolute)
            return updated_node.with_changes(relative=[cst.Dot()], module=cst.Name(absolute.rpartition(".")[2]))
        if level == 0:
            return updated_node
        return updated_node.with_changes(relative=[], module=cst.parse_expression(absolute))


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    assert isinstance(node, cst.Attribute)
    return f"{_dotted(node.value)}.{node.attr.value}"
