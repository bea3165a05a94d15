"""What the API-translation patches (P18-P20) share: the uses of one upstream API in a file.

A translation rewrites a file only when *every* use of the API has a pinned spelling with the
same behaviour: :class:`Uses` collects them (the local names the API is imported under, each
call, the other references, string literals that name upstream-only parameters), the patch
decides once per file, and :func:`replace_alias` swaps the API for the pin's names in its
``from`` imports.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst

from pytest_flmigrate.index.symbols import absolute_module

from .imports import small_statements
from .syntax import dotted_name, drop_items, parsed

NOT_LITERAL = object()
"""What :func:`literal` returns for an expression that is not a Python literal."""


@dataclass(frozen=True)
class Api:
    """An upstream API: its name and the modules a migrated file may import it from."""

    name: str
    modules: tuple[str, ...]


def import_module(node: cst.ImportFrom, package: str) -> str:
    """The absolute module of a ``from`` import (a relative one resolved in ``package``)."""
    return absolute_module(package, len(node.relative), dotted_name(node.module))


def bound_names(module: cst.Module, package: str, api: Api) -> set[str]:
    """The local names ``module`` binds ``api`` to with ``from X import`` (``package``: the
    file's package, for relative imports)."""
    names: set[str] = set()
    for statement in small_statements(module):
        if not isinstance(statement, cst.ImportFrom) or isinstance(statement.names, cst.ImportStar):
            continue
        if import_module(statement, package) not in api.modules:
            continue
        for alias in statement.names:
            if dotted_name(alias.name) == api.name:
                asname = alias.asname.name if alias.asname else None
                names.add(asname.value if isinstance(asname, cst.Name) else api.name)
    return names


class Uses(cst.CSTVisitor):
    """Every use of the local ``names`` in a module: calls, references that are not a call's
    callee (``others``), class bases, and the attribute names and string literals of the
    module."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names
        self.calls: list[cst.Call] = []
        self.others = 0
        self.bases = 0
        self.strings: list[str] = []
        self.attributes: set[str] = set()
        self._callees: set[int] = set()

    @classmethod
    def of(cls, module: cst.Module, names: set[str]) -> Uses:
        uses = cls(names)
        module.visit(uses)
        return uses

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value in self.names:
            self.calls.append(node)
            self._callees.add(id(node.func))

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.bases += sum(1 for base in node.bases if dotted_name(base.value) in self.names)

    def visit_Name(self, node: cst.Name) -> None:
        if node.value in self.names and id(node) not in self._callees:
            self.others += 1

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self.attributes.add(node.attr.value)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self.strings.append(node.value)

    def visit_FormattedStringText(self, node: cst.FormattedStringText) -> None:
        self.strings.append(node.value)


def keywords(call: cst.Call) -> dict[str, cst.Arg]:
    """The call's keyword arguments by name."""
    return {arg.keyword.value: arg for arg in call.args if arg.keyword is not None}


def positional(call: cst.Call) -> list[cst.Arg]:
    return [arg for arg in call.args if arg.keyword is None and not arg.star]


def has_star(call: cst.Call) -> bool:
    return any(arg.star for arg in call.args)


def code(node: cst.CSTNode, limit: int = 80) -> str:
    """The source of ``node`` on one line, cut at ``limit`` characters."""
    text = " ".join(cst.Module(body=[]).code_for_node(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def literal(node: cst.BaseExpression) -> object:
    """The value of a literal expression (``None``, ``False``, ``"silu"``, ``1.0``), else
    :data:`NOT_LITERAL`."""
    try:
        return ast.literal_eval(cst.Module(body=[]).code_for_node(node))
    except (ValueError, SyntaxError):
        return NOT_LITERAL


def replace_alias(node: cst.ImportFrom, old: str, new: list[str]) -> cst.ImportFrom:
    """``node`` importing the names ``new`` in place of ``old`` (names the statement already
    imports are not repeated)."""
    if isinstance(node.names, cst.ImportStar):
        return node
    aliases = list(node.names)
    present = {dotted_name(alias.name) for alias in aliases if alias.asname is None}
    position = next((i for i, alias in enumerate(aliases) if dotted_name(alias.name) == old), None)
    if position is None:
        return node
    wanted = [name for name in dict.fromkeys(new) if name not in present]
    replacement = [aliases[position].with_changes(name=cst.Name(name), asname=None) for name in wanted]
    for index, alias in enumerate(replacement[:-1]):
        replacement[index] = alias.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    if replacement:
        return node.with_changes(names=[*aliases[:position], *replacement, *aliases[position + 1 :]])
    return node.with_changes(names=drop_items(aliases, {position}))


Refusal = Callable[[cst.Module, str], "str | None"]
"""A translation's decision for one file (the module and its package): why it is left alone,
or None when every use is translated."""


def refusal_of(
    api: Api, file_refusal: Callable[[Uses], str | None], call_refusal: Callable[[cst.Call], str | None]
) -> Refusal:
    """The :data:`Refusal` of a translation that checks the file's uses of ``api`` as a whole,
    then each call: the file is left alone when it does not import ``api``, for
    ``file_refusal(uses)``, or for the first call ``call_refusal`` refuses (named in the reason)."""

    def refusal(module: cst.Module, package: str) -> str | None:
        names = bound_names(module, package, api)
        if not names:
            return "not imported from " + " or ".join(api.modules)
        uses = Uses.of(module, names)
        why = file_refusal(uses)
        if why:
            return why
        for call in uses.calls:
            why = call_refusal(call)
            if why:
                return f"{code(call)}: {why}"
        return None

    return refusal


def translated_imports(api: Api, refusal: Refusal) -> Callable[[str, str], set[tuple[str, str]]]:
    """The patch's ``rewritten_imports(source, package)``: the ``(module, name)`` imports of
    ``api`` it rewrites away in ``source`` (step 4 then plans no other fix for them)."""

    def rewritten_imports(source: str, package: str) -> set[tuple[str, str]]:
        if api.name not in source or refusal(parsed(source), package) is not None:
            return set()
        return {(module, api.name) for module in api.modules}

    return rewritten_imports
