"""P25: a ``vllm.envs`` flag the pin lacks is read from ``vllm_fl/compat/envs.py`` at upstream's default.

What: in a file that reads a flag upstream's ``vllm.envs`` defines and the pin's does not, the
imports of ``vllm.envs`` point at the shim step 4 writes beside the migrated files, which serves
every flag of the pin's ``vllm.envs`` and each missing one at upstream's default::

    import vllm.envs as envs
    replicate = envs.VLLM_DCP_Q_REPLICATE
    # becomes
    import vllm_fl.compat.envs as envs
    replicate = envs.VLLM_DCP_Q_REPLICATE  # False: upstream's default

``from vllm import envs`` becomes ``from vllm_fl.compat import envs`` and ``from vllm.envs
import FLAG`` becomes ``from vllm_fl.compat.envs import FLAG``. One count per import statement.

Why: the pin's ``vllm.envs`` answers an unknown name with ``AttributeError`` (its module
``__getattr__``), so upstream code reading a newer flag fails at run time. A flag the pin does not
define switches or bounds a feature the pin does not have either; with the variable unset,
upstream reads the same default, so the migrated code behaves as upstream's does by default. The
flags and defaults are data: autofix/env_flags.py compares the two trees' ``environment_variables``
(a getter whose default depends on the machine or on a helper of upstream's is left out, and its
flag stays a step 6 finding).

When: any pin older than upstream's ``vllm.envs``; the table is computed for whatever pin is given.
"""

from __future__ import annotations

from collections.abc import Collection

import libcst as cst

from .base import PatchContext
from .imports import ImportRedirectTransformer, Location
from .syntax import dotted, dotted_name

ID = "P25"
NAME = "env-flags"
PINNED = ">=0"  # the table comes from comparing the trees, for any pin

ENVS = "vllm.envs"
SHIM = "vllm_fl.compat.envs"


def relevant(source: str, context: PatchContext) -> bool:
    """Only a file spelling ``envs`` and a flag the pin lacks can need this patch."""
    return "envs" in source and any(flag in source for flag in context.env_flags)


class _Reads(cst.CSTVisitor):
    """The names bound to ``vllm.envs``, the flags read through them, the flags imported from it."""

    def __init__(self) -> None:
        super().__init__()
        self.bound: set[str] = set()
        self.imported: set[str] = set()
        self.attributes: list[tuple[str, str]] = []

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            if dotted_name(alias.name) == ENVS and alias.asname and isinstance(alias.asname.name, cst.Name):
                self.bound.add(alias.asname.name.value)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.relative or isinstance(node.names, cst.ImportStar):
            return
        module = dotted_name(node.module)
        for alias in node.names:
            name = dotted_name(alias.name)
            if module == "vllm" and name == "envs":
                asname = alias.asname.name if alias.asname else None
                self.bound.add(asname.value if isinstance(asname, cst.Name) else "envs")
            elif module == ENVS and name:
                self.imported.add(name)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if isinstance(node.value, cst.Name):
            self.attributes.append((node.value.value, node.attr.value))


def reads_missing(module: cst.Module, flags: Collection[str]) -> bool:
    """Whether ``module`` reads a flag of ``flags`` from ``vllm.envs``."""
    reads = _Reads()
    module.visit(reads)
    return any(flag in flags for flag in reads.imported) or any(
        name in reads.bound and attr in flags for name, attr in reads.attributes
    )


class Transformer(ImportRedirectTransformer):
    def visit_Module(self, node: cst.Module) -> None:
        self._on = bool(self.context.env_flags) and reads_missing(node, self.context.env_flags.keys())

    def module_of(self, node: cst.ImportFrom) -> str | None:
        module = super().module_of(node)
        return module if self._on and module in ("vllm", ENVS) else None

    def locate(self, module: str, name: str) -> Location:
        if module == "vllm" and name == "envs":
            return SHIM.rpartition(".")[0], "envs"
        return (SHIM, name) if module == ENVS else (module, name)

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import:
        if not self._on:
            return updated_node
        names = [
            alias.with_changes(name=dotted(SHIM)) if dotted_name(alias.name) == ENVS and alias.asname else alias
            for alias in updated_node.names
        ]
        if all(new is old for new, old in zip(names, updated_node.names)):
            return updated_node
        self.count += 1
        return updated_node.with_changes(names=names)
