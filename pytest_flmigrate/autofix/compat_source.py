"""One upstream module cut into top-level units (what each binds, imports and references), and
pruned into a compat module's text: the definitions a backport keeps and the imports they use,
formatting, comments and license header kept (libcst). :mod:`pytest_flmigrate.autofix.backport`
decides what to keep.
"""

from __future__ import annotations

import ast
import functools
import symtable
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from pytest_flmigrate.index.resolve import annotation_class_name
from pytest_flmigrate.index.symbols import absolute_module, is_type_checking, parse_source
from pytest_flmigrate.patches.syntax import dotted_name, drop_items

LIVE_MODULE = "_pinned"  # the pin's own module, in a compat module reading its rebound globals


@dataclass(frozen=True)
class ImportBinding:
    module: str  # absolute
    name: str | None  # None for ``import module``
    type_checking: bool


@dataclass
class Unit:
    """A top-level statement (an ``if TYPE_CHECKING:`` block of imports counts as imports)."""

    node: ast.stmt
    kind: str  # future, import, definition, block, docstring, other
    bound: set[str] = field(default_factory=set)
    imports: dict[str, ImportBinding] = field(default_factory=dict)
    first: int = 0
    last: int = 0
    _deps: tuple[set[str], set[tuple[str, str]]] | None = None

    @property
    def lines(self) -> int:
        return self.last - self.first + 1


class ModuleSource:
    """An upstream module's source cut into units, with what each binds and references."""

    def __init__(self, module: str, text: str, is_package: bool, path: Path | None = None) -> None:
        self.module = module
        self.path = path
        self.is_package = is_package
        self.text = text
        self.lines = self.text.splitlines()
        tree = parse_source(self.text, str(path or module))
        self.tree = tree if tree is not None else ast.Module(body=[], type_ignores=[])
        self.parsed = tree is not None
        package = module if is_package else module.rpartition(".")[0]
        self.units = [self._unit(node, package, index) for index, node in enumerate(self.tree.body)]
        self.binders: dict[str, list[Unit]] = {}
        for unit in self.units:
            for name in unit.bound:
                self.binders.setdefault(name, []).append(unit)
        self.rebound = {name for node in ast.walk(self.tree) if isinstance(node, ast.Global) for name in node.names}
        self.has_star = any(
            isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names) for node in ast.walk(self.tree)
        )

    def _unit(self, node: ast.stmt, package: str, index: int) -> Unit:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        unit = Unit(node, "other", first=first, last=node.end_lineno or node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            unit.kind = "future"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            unit.kind = "import"
            unit.imports = _import_bindings(node, package, False)
        elif (
            isinstance(node, ast.If)
            and is_type_checking(node.test)
            and not node.orelse
            and all(isinstance(child, (ast.Import, ast.ImportFrom)) for child in node.body)
        ):
            unit.kind = "import"
            for child in node.body:
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    unit.imports.update(_import_bindings(child, package, True))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            unit.kind = "definition"
            unit.bound = {node.name}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            unit.bound = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            unit.kind = (
                "definition" if unit.bound and not (isinstance(node, ast.AnnAssign) and node.value is None) else "other"
            )
        elif (
            index == 0
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            unit.kind = "docstring"
        elif isinstance(node, (ast.If, ast.Try, ast.With, getattr(ast, "TryStar", ast.Try))):
            unit.kind = "block"
            for inner in ast.walk(node):
                if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    unit.bound.add(inner.name)
                elif isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                    unit.bound.add(inner.id)
                elif isinstance(inner, (ast.Import, ast.ImportFrom)):
                    bindings = _import_bindings(inner, package, False)
                    unit.bound |= set(bindings)
                    unit.imports.update(bindings)
        if unit.kind == "import":
            unit.bound = set(unit.imports)
        return unit

    def source_of(self, unit: Unit) -> str:
        return "\n".join(self.lines[unit.first - 1 : unit.last]) + "\n"

    def nested_imports(self, unit: Unit) -> list[ImportBinding]:
        """Imports inside a definition (function-local imports), made absolute."""
        if unit.kind not in ("definition", "block"):
            return []
        package = self.module if self.is_package else self.module.rpartition(".")[0]
        found: list[ImportBinding] = []
        for node in ast.walk(unit.node):
            if node is not unit.node and isinstance(node, (ast.Import, ast.ImportFrom)):
                if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                    continue
                found.extend(_import_bindings(node, package, False).values())
        return found

    def deps(self, unit: Unit) -> tuple[set[str], set[tuple[str, str]]]:
        """(module-level names the unit reads, (name, attribute) reads of those names)."""
        if unit._deps is None:
            unit._deps = _references(self.source_of(unit), unit.bound)
        return unit._deps

    # -- pruning ---------------------------------------------------------------------------

    def pruned(self, keep: set[str], header: str, from_pin: tuple[str, ...] = (), live: tuple[str, ...] = ()) -> str:
        """The module cut down to the units binding ``keep`` and the imports they use.

        Kept statements are copied as upstream wrote them (formatting, comments, the comment
        block right above each), after upstream's license header and ``header`` (comment
        lines); imports are then trimmed to the names used, with libcst. ``from_pin`` names are
        imported from the module itself (as the pin has it), before the first definition kept;
        a name kept as a copy is not (two models' closures may disagree: the copy serves both, as
        the import would bind the compat module itself, a circular import).
        """
        kept_units = {id(u) for name in keep for u in self.binders.get(name, []) if u.kind in ("definition", "block")}
        needed: set[str] = set()
        for unit in self.units:
            if id(unit) in kept_units:
                needed |= self.deps(unit)[0]
        for unit in self.units:  # a kept ``if TYPE_CHECKING:`` block needs its test's names
            if unit.kind == "import" and isinstance(unit.node, ast.If) and unit.bound & needed:
                needed |= {n.id for n in ast.walk(unit.node.test) if isinstance(n, ast.Name)}
        first_statement = self.units[0].first if self.units else len(self.lines) + 1
        out = [line for line in self.lines[: first_statement - 1] if line.startswith("#")]
        out += [f"# {line}".rstrip() for line in header.splitlines()] + [""]
        emitted: set[tuple[int, int]] = set()
        pending = [name for name in from_pin if name not in keep]
        if live:
            out.append(f"import {self.module} as {LIVE_MODULE}")
        for unit in self.units:
            span = (unit.first, unit.last)
            if span in emitted:
                continue  # ``import a; import b``: one line, two units
            if unit.kind == "future" or (unit.kind == "import" and unit.bound & needed):
                out += self.lines[unit.first - 1 : unit.last]
            elif id(unit) in kept_units:
                if pending:
                    out += [f"from {self.module} import {', '.join(sorted(pending))}"]
                    pending = []
                out += ["", "", *self._comments_above(unit), *self.lines[unit.first - 1 : unit.last]]
            else:
                continue
            emitted.add(span)
        if pending:
            out += [f"from {self.module} import {', '.join(sorted(pending))}"]
        text = "\n".join(out) + "\n"
        if live:
            text = _read_through(text, set(live))
        return _trim_imports(text, needed | ({LIVE_MODULE} if live else set()))

    def _comments_above(self, unit: Unit) -> list[str]:
        """The comment lines directly above a statement (they document it)."""
        found: list[str] = []
        line = unit.first - 2
        while line >= 0 and self.lines[line].lstrip().startswith("#"):
            found.insert(0, self.lines[line])
            line -= 1
        return found


def binds(node: ast.AST, name: str) -> bool:
    """Whether a definition binds ``name`` anywhere inside (assignment, parameter, ``global``)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == name and not isinstance(sub.ctx, ast.Load):
            return True
        if isinstance(sub, ast.arg) and sub.arg == name:
            return True
        if isinstance(sub, (ast.Global, ast.Nonlocal)) and name in sub.names:
            return True
    return False


def _read_through(text: str, names: set[str]) -> str:
    """Every read of ``names`` in ``text`` becomes ``_pinned.<name>`` (positions from ast)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    spots = sorted(
        (
            (node.lineno, node.col_offset, node.id)
            for node in ast.walk(tree)
            if isinstance(node, ast.Name) and node.id in names and isinstance(node.ctx, ast.Load)
        ),
        reverse=True,
    )
    for line, column, name in spots:
        raw = lines[line - 1].encode("utf-8")
        raw = raw[:column] + f"{LIVE_MODULE}.{name}".encode() + raw[column + len(name.encode()) :]
        lines[line - 1] = raw.decode("utf-8")
    return "".join(lines)


def _trim_imports(text: str, needed: set[str]) -> str:
    """``text`` with top-level import statements (also under ``if TYPE_CHECKING:``) cut down to
    the names in ``needed``; ``from __future__`` imports stay."""
    module = cst.parse_module(text)
    body: list[cst.BaseStatement] = []
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            kept = _trim_line(statement, needed)
            if kept is not None:
                body.append(kept)
        elif (
            isinstance(statement, cst.If)
            and isinstance(statement.body, cst.IndentedBlock)
            and _is_type_checking_test(statement.test)
        ):
            lines = [
                kept
                for line in statement.body.body
                if isinstance(line, cst.SimpleStatementLine) and (kept := _trim_line(line, needed)) is not None
            ]
            if lines:
                body.append(statement.with_changes(body=statement.body.with_changes(body=lines)))
        else:
            body.append(statement)
    return module.with_changes(body=body).code


def _is_type_checking_test(test: cst.BaseExpression) -> bool:
    name = dotted_name(test) or ""
    return name.rsplit(".", 1)[-1] == "TYPE_CHECKING"


def _trim_line(line: cst.SimpleStatementLine, needed: set[str]) -> cst.SimpleStatementLine | None:
    small: list[cst.BaseSmallStatement] = []
    for item in line.body:
        if isinstance(item, cst.ImportFrom) and dotted_name(item.module) == "__future__":
            small.append(item)
        elif isinstance(item, (cst.Import, cst.ImportFrom)):
            trimmed = _filter_import(item, needed)
            if trimmed is not None:
                small.append(trimmed)
        else:
            small.append(item)
    if not small:
        return None
    small[-1] = small[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
    return line.with_changes(body=small)


def _import_bindings(node: ast.Import | ast.ImportFrom, package: str, type_checking: bool) -> dict[str, ImportBinding]:
    found: dict[str, ImportBinding] = {}
    if isinstance(node, ast.ImportFrom):
        origin = absolute_module(package, node.level, node.module)
        for alias in node.names:
            if alias.name != "*":
                found[alias.asname or alias.name] = ImportBinding(origin, alias.name, type_checking)
    else:
        for alias in node.names:
            if alias.asname:
                found[alias.asname] = ImportBinding(alias.name, None, type_checking)
            else:
                found[alias.name.split(".")[0]] = ImportBinding(alias.name.split(".")[0], None, type_checking)
    return found


def _references(source: str, own: set[str]) -> tuple[set[str], set[tuple[str, str]]]:
    """Global names a top-level statement reads (symtable: exact scoping), and ``name.attr``
    reads of those names."""
    try:
        table = symtable.symtable(source, "<unit>", "exec")
    except SyntaxError:
        return set(), set()
    names: set[str] = set()

    def visit(current: symtable.SymbolTable, top: bool) -> None:
        for symbol in current.get_symbols():
            if not symbol.is_referenced():
                continue
            if top or symbol.is_global() or symbol.is_declared_global():
                names.add(symbol.get_name())
        for child in current.get_children():
            visit(child, False)

    visit(table, True)
    names -= own
    attributes: set[tuple[str, str]] = set()
    tree = parse_source(source)
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names:
            attributes.add((node.value.id, node.attr))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            attributes |= _typed_parameter_reads(node, names)
    return names, attributes


def _typed_parameter_reads(function: ast.FunctionDef | ast.AsyncFunctionDef, names: set[str]) -> set[tuple[str, str]]:
    """``(Class, attr)`` for each ``param.attr`` read in ``function`` where ``param: Class`` and
    ``Class`` is one of the module-level ``names`` (``pooling_metadata.get_pooling_cursor()`` with
    ``pooling_metadata: PoolingMetadata``): the copy reads ``attr`` on the pin's objects."""
    args = function.args
    typed = {
        arg.arg: annotated
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]
        if (annotated := annotation_class_name(arg.annotation)) in names
    }
    rebound = {node.id for node in ast.walk(function) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    found: set[tuple[str, str]] = set()
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in typed
            and node.value.id not in rebound
            and isinstance(node.ctx, ast.Load)
        ):
            found.add((typed[node.value.id], node.attr))
    return found


def _filter_import(item: cst.BaseSmallStatement, needed: set[str]) -> cst.BaseSmallStatement | None:
    if isinstance(item, cst.ImportFrom):
        if isinstance(item.names, cst.ImportStar):
            return None
        aliases = list(item.names)
        drop = {i for i, alias in enumerate(aliases) if _bound_name(alias, True) not in needed}
        if len(drop) == len(aliases):
            return None
        if not drop:
            return item
        kept = drop_items(aliases, drop)
        changes: dict = {"names": kept}
        if item.lpar is None and isinstance(kept[-1].comma, cst.Comma):
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return item.with_changes(**changes)
    if isinstance(item, cst.Import):
        aliases = list(item.names)
        drop = {i for i, alias in enumerate(aliases) if _bound_name(alias, False) not in needed}
        if len(drop) == len(aliases):
            return None
        return item.with_changes(names=drop_items(aliases, drop)) if drop else item
    return None


def _bound_name(alias: cst.ImportAlias, from_import: bool) -> str:
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    name = dotted_name(alias.name) or ""
    return name if from_import else name.split(".")[0]


@dataclass(frozen=True)
class CompatSpec:
    """What a compat module holds: upstream definitions copied (``keep``) and the names of the
    same upstream module those copies use that the pin's module defines too (``from_pin``,
    imported from there so that objects created by the pin and by the copies are one type)."""

    keep: tuple[str, ...]
    from_pin: tuple[str, ...] = ()
    live: tuple[str, ...] = ()  # module globals the pin rebinds: read as ``_pinned.<name>``


def compat_header(upstream_module: str) -> str:
    """The comment lines a compat module starts with (after upstream's license header)."""
    return (
        f"Backported from upstream {upstream_module} by pytest-flmigrate (catalog P16): only the\n"
        "definitions migrated models import and what they need. Step 4 regenerates this file;\n"
        "hand edits are kept (replayed like in any migrated file)."
    )


def compat_text(planned, source: str) -> str:
    """The compat module of ``planned`` (a compat :class:`~pytest_flmigrate.steps.migrate.PlannedFile`):
    its upstream ``source`` pruned to ``planned.compat``, before the catalog patches run."""
    return _compat_text(planned.upstream_module, planned.is_package, source, planned.compat)


@functools.lru_cache(maxsize=256)
def _compat_text(module: str, is_package: bool, source: str, spec: CompatSpec) -> str:
    cut = module_source(module, source, is_package)
    return cut.pruned(set(spec.keep), compat_header(module), spec.from_pin, spec.live)


@functools.lru_cache(maxsize=256)
def module_source(module: str, text: str, is_package: bool) -> ModuleSource:
    """The analysed source of an upstream module (shared: the analysis is pure)."""
    return ModuleSource(module, text, is_package)
