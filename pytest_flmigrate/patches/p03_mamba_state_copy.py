"""P3: the mamba state-copy API the pin lacks is removed: its imports and the methods returning it.

What: the names in ``MISSING_NAMES`` (``MambaStateCopyFunc``, ``MambaStateCopyFuncCalculator``, ...) are dropped
from ``from ... import`` statements (the statement goes when it empties), and every method named
in ``MISSING_METHODS`` is deleted from its class, decorators included::

    from vllm.model_executor.layers.mamba.mamba_utils import (
        MambaStateCopyFunc,
        MambaStateCopyFuncCalculator,
        MambaStateDtypeCalculator,
    )
    class XForCausalLM(nn.Module, IsHybrid):
        @classmethod
        def get_mamba_state_copy_func(cls) -> tuple[MambaStateCopyFunc, MambaStateCopyFunc]:
            return MambaStateCopyFuncCalculator.gated_delta_net_state_copy_func()
    # becomes
    from vllm.model_executor.layers.mamba.mamba_utils import (
        MambaStateDtypeCalculator,
    )
    class XForCausalLM(nn.Module, IsHybrid):
        ...

A name still used elsewhere in the file keeps its import, so the file fails loudly at import time
instead of later, and review reports it. One count per import statement edited and per method.

Why: 0.13.0 has no ``MambaStateCopyFunc*`` types and no ``get_mamba_state_copy_func`` hook (the
pin copies mamba state itself); upstream hybrid models implement the hook with those types.

When: hybrid models (mamba / linear attention / gated delta net layers), e.g. Qwen3.5,
Qwen3-Next, Falcon-H1, GraniteMoeHybrid, Bailing linear.
"""

from __future__ import annotations

from typing import TypeGuard

import libcst as cst

from .base import PatchContext, PatchTransformer
from .syntax import drop_items

ID = "P3"
NAME = "mamba-state-copy"
PINNED = "<0.15"  # the pins lacking the API: 0.13.0 does, 0.15.0 and later have it

MISSING_NAMES = frozenset(
    {
        "MambaStateCopyFunc",
        "MambaStateCopyFuncCalculator",
        "MambaStateCopyFuncs",
        "MambaStateCopyFuncsByType",
        "get_mamba_state_copy_func",
    }
)
"""Names upstream imports that 0.13.0 does not define anywhere."""

MISSING_METHODS = frozenset({"get_mamba_state_copy_func"})
"""Class methods that only exist to return the missing types; removed whole."""


def relevant(source: str, context: PatchContext) -> bool:
    """Only files spelling one of the missing names can need this patch."""
    return any(name in source for name in MISSING_NAMES | MISSING_METHODS)


class Transformer(PatchTransformer):
    def visit_Module(self, node: cst.Module) -> None:
        uses = _Uses()
        node.visit(uses)
        self._droppable = MISSING_NAMES - uses.names
        self._class_bodies: set[cst.BaseSuite] = set()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._class_bodies.add(node.body)

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body = list(updated_node.body)
        if original_node in self._class_bodies:
            body = [statement for statement in body if not _is_missing_method(statement)]
            self.count += len(updated_node.body) - len(body)
            if body and body[0] is not updated_node.body[0]:
                body[0] = _without_blank_lead(body[0])
        if not body and original_node.body:
            body = [cst.SimpleStatementLine(body=[cst.Pass()])]
        return updated_node.with_changes(body=body)

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        body = []
        for small in updated_node.body:
            kept = self._without_missing(small)
            if kept is not small:
                self.count += 1
            if kept is not None:
                body.append(kept)
        if not body:
            return cst.RemovalSentinel.REMOVE
        if len(body) < len(updated_node.body):
            body[-1] = body[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(body=body)

    def _without_missing(self, small: cst.BaseSmallStatement) -> cst.BaseSmallStatement | None:
        if not isinstance(small, cst.ImportFrom) or isinstance(small.names, cst.ImportStar):
            return small
        drop = {
            index
            for index, alias in enumerate(small.names)
            if isinstance(alias.name, cst.Name) and alias.name.value in self._droppable
        }
        if not drop:
            return small
        if len(drop) == len(small.names):
            return None
        return small.with_changes(names=drop_items(small.names, drop))


def _without_blank_lead(statement: cst.BaseStatement) -> cst.BaseStatement:
    """A new first statement of a block starts right after its header (comments stay)."""
    assert isinstance(statement, (cst.SimpleStatementLine, cst.BaseCompoundStatement))  # every statement
    lines = list(statement.leading_lines)
    while lines and lines[0].comment is None:
        lines.pop(0)
    return statement.with_changes(leading_lines=lines)


def _is_missing_method(statement: cst.CSTNode) -> TypeGuard[cst.FunctionDef]:
    return isinstance(statement, cst.FunctionDef) and statement.name.value in MISSING_METHODS


class _Uses(cst.CSTVisitor):
    """Every name the file references outside imports and outside the methods P3 removes."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self._removed: set[cst.FunctionDef] = set()

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._removed.update(s for s in node.body.body if _is_missing_method(s))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return node not in self._removed

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)
