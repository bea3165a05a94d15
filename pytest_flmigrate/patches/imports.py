"""The one mechanism that moves names between modules in ``from X import ...`` statements.

A patch subclasses :class:`ImportRedirectTransformer` and says where each imported name
should come from (its ``locate``); the rewrite keeps the statement's own formatting for the
names that stay together, moves the others into new statements (one per target module, in
order of first appearance, placed right after), keeps ``as`` aliases, and adds one where a name
is spelled differently at its new home so the code using it stays untouched. P1, P2, P14, P15
and P16 are built on it; P17 reuses :func:`small_statements`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import ClassVar

import libcst as cst

from pytest_flmigrate.index.symbols import absolute_module

from .base import PatchTransformer
from .syntax import dotted, dotted_name, drop_items

Location = tuple[str, str]
"""(module, name): where the plugin imports a name from."""

Locate = Callable[[str, str], Location]
"""(upstream module, imported name) -> its location; ``"*"`` stands for a star import."""


def module_location(module_map: Mapping[str, str], module: str, name: str) -> Location:
    """Where ``from module import name`` points once modules are mapped.

    ``name`` may itself be a mapped submodule (``from pkg import mod``): it is then
    imported from the parent of its mapped module, under the mapped module's last part.
    """
    mapped = module_map.get(f"{module}.{name}")
    if mapped and "." in mapped:
        parent, _, last = mapped.rpartition(".")
        return parent, last
    return module_map.get(module, module), name


def redirect_import_line(
    line: cst.SimpleStatementLine, module_of: Callable[[cst.ImportFrom], str | None], locate: Locate
) -> tuple[list[cst.SimpleStatementLine], int]:
    """Rewrite every ``from`` import on ``line`` whose names ``locate`` moves.

    ``module_of`` gives the absolute upstream module of a statement, or None to leave the
    statement alone. Returns the lines replacing ``line`` (split-off statements follow it)
    and how many statements were rewritten.
    """
    body: list[cst.BaseSmallStatement] = []
    extra: list[cst.SimpleStatementLine] = []
    for small in line.body:
        rewritten = None
        if isinstance(small, cst.ImportFrom) and (module := module_of(small)):
            rewritten = redirect_from_import(small, module, locate)
        # Split-off statements land after the line: never behind code that uses them.
        if rewritten is None or (len(rewritten) > 1 and small is not line.body[-1]):
            body.append(small)
            continue
        first, *rest = rewritten
        body.append(first)
        extra.extend(cst.SimpleStatementLine(body=[statement]) for statement in rest)
    count = sum(new is not old for new, old in zip(body, line.body))
    return ([line.with_changes(body=body), *extra] if count else [line]), count


_STATEMENT_HOLDERS = (
    cst.Module,
    cst.SimpleStatementLine,
    cst.BaseCompoundStatement,
    cst.BaseSuite,
    cst.Else,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
    cst.Finally,
    cst.MatchCase,
)


def with_imports(module: cst.Module, needed: Iterable[tuple[str, str]]) -> cst.Module:
    """``module`` with ``from <module> import <name>`` for each of ``needed``, in order, after its
    last top-level import statement (at its top when it has none)."""
    lines = [
        cst.SimpleStatementLine(body=[cst.ImportFrom(module=dotted(owner), names=[cst.ImportAlias(cst.Name(name))])])
        for owner, name in needed
    ]
    if not lines:
        return module
    body = list(module.body)
    last_import = max(
        (
            i
            for i, statement in enumerate(body)
            if isinstance(statement, cst.SimpleStatementLine)
            and any(isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body)
        ),
        default=-1,
    )
    return module.with_changes(body=[*body[: last_import + 1], *lines, *body[last_import + 1 :]])


def small_statements(node: cst.CSTNode) -> Iterator[cst.BaseSmallStatement]:
    """Every small statement (``import``, assignment, ...) under ``node``, at any depth of
    blocks, without walking expressions (fast on large files)."""
    if isinstance(node, cst.SimpleStatementLine):
        yield from node.body
        return
    if isinstance(node, cst.SimpleStatementSuite):
        yield from node.body
        return
    for child in node.children:
        if isinstance(child, _STATEMENT_HOLDERS):
            yield from small_statements(child)


def from_imports(module: cst.Module, package: str) -> Iterator[tuple[str, str, str]]:
    """(absolute origin module, imported name, local name) of every ``from X import name [as local]``
    of ``module`` at any depth (relative imports resolved against ``package``); star imports left out."""
    for statement in small_statements(module):
        if not isinstance(statement, cst.ImportFrom) or isinstance(statement.names, cst.ImportStar):
            continue
        origin = absolute_module(package, len(statement.relative), dotted_name(statement.module))
        for alias in statement.names:
            name = dotted_name(alias.name) or ""
            local = dotted_name(alias.asname.name) if alias.asname else None
            yield origin, name, local or name


class ImportRedirectTransformer(PatchTransformer):
    """Base of the patches that move names in ``from`` imports.

    Subclasses say which statements they handle (``module_of``: absolute imports by default)
    and where each name goes (``locate``). One count per statement rewritten.
    """

    visits_expressions = False
    """Whether the patch needs more than statements visited. Import rewrites do not: the visit
    descends only into nodes that hold statements (imports are never inside expressions,
    parameters or decorators), several times faster on a large model file."""

    def on_visit(self, node: cst.CSTNode) -> bool:
        if not self.visits_expressions and not isinstance(node, _STATEMENT_HOLDERS):
            super().on_visit(node)
            return False
        return super().on_visit(node)

    def module_of(self, node: cst.ImportFrom) -> str | None:
        return None if node.relative else dotted_name(node.module)

    def locate(self, module: str, name: str) -> Location:
        raise NotImplementedError

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.SimpleStatementLine]:
        lines, count = redirect_import_line(updated_node, self.module_of, self.locate)
        self.count += count
        return lines[0] if len(lines) == 1 else cst.FlattenSentinel(lines)


def mentions(source: str, moves: Mapping[Location, Location]) -> bool:
    """Whether ``source`` spells a name ``moves`` maps (a file that does not is not visited)."""
    return any(name in source for _, name in moves)


class TableRedirect(ImportRedirectTransformer):
    """Moves each name as a table of the patch context maps it: ``table`` names the field
    (P15's ``relocations``, P16's ``backports``)."""

    table: ClassVar[str]

    def locate(self, module: str, name: str) -> Location:
        moves: Mapping[Location, Location] = getattr(self.context, self.table)
        return moves.get((module, name), (module, name))


def redirect_from_import(node: cst.ImportFrom, module: str, locate: Locate) -> list[cst.ImportFrom] | None:
    """The statements replacing ``node`` (absolute upstream ``module``), or None if unchanged.

    The group of names that stays in ``module`` (or, when none stays, the first group) keeps
    ``node`` itself, parentheses and comments included; other groups become new statements.
    """
    aliases: Sequence[cst.ImportAlias] = [] if isinstance(node.names, cst.ImportStar) else list(node.names)
    if not aliases:
        target, _ = locate(module, "*")
        if target == module and not node.relative:
            return None
        return [node.with_changes(module=dotted(target), relative=[])]

    located = [locate(module, _imported(alias)) for alias in aliases]
    if not node.relative and all(loc == (module, _imported(a)) for loc, a in zip(located, aliases)):
        return None

    order = list(dict.fromkeys(target for target, _ in located))
    primary = module if module in order else order[0]
    renamed = [_renamed(alias, name) for alias, (_, name) in zip(aliases, located)]
    moved = {i for i, (target, _) in enumerate(located) if target != primary}
    statements = [node.with_changes(module=dotted(primary), relative=[], names=drop_items(renamed, moved))]
    for target in order:
        if target == primary:
            continue
        names = [
            alias.with_changes(comma=cst.MaybeSentinel.DEFAULT)
            for alias, (where, _) in zip(renamed, located)
            if where == target
        ]
        statements.append(cst.ImportFrom(module=dotted(target), names=names))
    return statements


def _imported(alias: cst.ImportAlias) -> str:
    return dotted_name(alias.name) or ""


def _renamed(alias: cst.ImportAlias, name: str) -> cst.ImportAlias:
    """``alias`` importing ``name`` instead, bound under the name the code already uses."""
    if name == _imported(alias):
        return alias
    asname = alias.asname or cst.AsName(name=cst.Name(_imported(alias)))
    return alias.with_changes(name=cst.Name(name), asname=asname)
