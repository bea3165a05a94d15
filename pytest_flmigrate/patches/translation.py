"""What the API-translation patches (P18-P20) share: the uses of one upstream API in a file.

A translation rewrites a file only when *every* use of the API has a pinned spelling with the
same behaviour: :class:`Uses` collects them (the local names the API is imported under, each
call, the other references, string literals that name upstream-only parameters), the patch's
:class:`Translation` decides once per file (the file's checks, then each call's), its transformer
(:class:`Translated`) rewrites only a file so decided, and :func:`replace_alias` swaps the API for
the pin's names in its ``from`` imports.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

import libcst as cst

from pytest_flmigrate.index.symbols import absolute_module

from .base import PatchContext
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


U = TypeVar("U", bound=Uses)


@dataclass(frozen=True)
class Translation(Generic[U]):
    """The skeleton of one API translation's decision for a file: the file is left alone when it
    does not import ``api``, for ``file_refusal(uses)``, or for the first call of the API that
    ``call_refusal(call, uses)`` refuses (named in the reason). ``uses`` collects the file's uses
    (:class:`Uses`, or a subclass that gathers what a patch checks besides). Its methods are the
    patch module's ``relevant``, ``refusal`` and ``rewritten_imports``."""

    api: Api
    uses: type[U]
    file_refusal: Callable[[U], str | None]
    call_refusal: Callable[[cst.Call, U], str | None]

    def relevant(self, source: str, context: object) -> bool:
        """Only a file spelling the API's name can need the patch."""
        return self.api.name in source

    def decide(self, module: cst.Module, package: str) -> tuple[U | None, str | None]:
        """The file's uses (None when it does not import the API) and why it is left alone (None:
        every use is translated)."""
        names = bound_names(module, package, self.api)
        if not names:
            return None, "not imported from " + " or ".join(self.api.modules)
        uses = self.uses(names)
        module.visit(uses)
        why = self.file_refusal(uses)
        if why:
            return uses, why
        for call in uses.calls:
            why = self.call_refusal(call, uses)
            if why:
                return uses, f"{code(call)}: {why}"
        return uses, None

    def refusal(self, module: cst.Module, package: str) -> str | None:
        """Why the file's uses of the API are left alone, or None when every one is translated."""
        return self.decide(module, package)[1]

    def rewritten_imports(self, source: str, package: str) -> set[tuple[str, str]]:
        """The ``(module, name)`` imports of the API the patch rewrites away in ``source`` (step 4
        then plans no other fix for them)."""
        if self.api.name not in source or self.refusal(parsed(source), package) is not None:
            return set()
        return {(module, self.api.name) for module in self.api.modules}


class Translated:
    """Mixin of a translation's transformer: at the module, the file's uses of the API when it
    is translated (``uses``; None when it is left alone), and whether a call calls the API."""

    translation: ClassVar[Translation]
    context: PatchContext

    def visit_Module(self, node: cst.Module) -> None:
        uses, why = self.translation.decide(node, self.context.package)
        self.uses = uses if why is None else None

    def calls_api(self, call: cst.Call) -> bool:
        return self.uses is not None and isinstance(call.func, cst.Name) and call.func.value in self.uses.names

    def imports_api(self, node: cst.ImportFrom) -> bool:
        """``node`` imports from a module of the API, in a translated file."""
        return self.uses is not None and import_module(node, self.context.package) in self.translation.api.modules


def runner_layout_refusal(uses: Uses) -> str | None:
    """The file checks of the fused-experts translations (P19, P20): the API used other than
    called, or a string naming upstream's ``routed_experts`` parameters (a loader written for the
    runner's layout)."""
    if uses.others:
        return "used other than called"
    if any("routed_experts" in text for text in uses.strings):
        return "the file names upstream's routed_experts parameters in strings (its loader expects the runner's layout)"
    return None
