"""Backports: upstream helpers the pin lacks, copied into ``vllm_fl/compat/`` (catalog P16).

A name a migrated file imports that the pinned vLLM defines nowhere (after relocations,
:mod:`pytest_flmigrate.fixes.relocate`) is copied from upstream when everything it needs resolves in
the pin, transitively and within a bound: each definition it references from its own module
comes along, each import it uses must work in the pin, be relocatable, or be backportable in
turn. The bound (:data:`MAX_DEFINITIONS` definitions and :data:`MAX_LINES` lines per missing
name, the ceiling measured in docs/api-gap.md) keeps whole subsystems (the fused-MoE cluster) out:
those stay findings, "port by hand".

Where copies go: one compat module per upstream module the definitions come from, mirroring
its path under ``vllm_fl.compat`` (vLLM's own prefix dropped): ``vllm.model_executor.models.utils``
-> ``vllm_fl/compat/model_executor/models/utils.py``, ``transformers.models.x.processing_x`` ->
``vllm_fl/compat/transformers/models/x/processing_x.py``. A compat module is the upstream module
pruned by libcst to the definitions kept and the imports they use (formatting, comments and the
license header survive), then patched like any migrated file (P1 makes its relative imports
absolute, P14/P15/P16 redirect its imports).

Refused, whatever the size (a copy would change behaviour or break at import): definitions
that register themselves at import time (``@CustomOp.register(...)``, ``register_*``
decorators: the pin already holds those names), code calling ``torch.ops.*`` kernels (the pin
may not register them), attribute reads of pinned modules the pin lacks (``envs.NEW_FLAG``,
``ops.new_kernel``), names bound by star imports or nowhere.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import functools
import re
import symtable
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import libcst as cst

from pytest_flmigrate.fixes.relocate import Relocator, definition_of
from pytest_flmigrate.index.resolve import Resolver, annotation_class_name
from pytest_flmigrate.index.symbols import absolute_module, is_type_checking, parse_source
from pytest_flmigrate.patches.syntax import dotted_name, drop_items

MAX_DEFINITIONS = 30
MAX_LINES = 1500
COMPAT_PACKAGE = "vllm_fl.compat"
LIVE_MODULE = "_pinned"  # the pin's own module, in a compat module reading its rebound globals
_BUILTINS = frozenset(dir(builtins)) | {"__name__", "__file__", "__doc__", "__spec__", "__package__", "__path__", "__builtins__", "__loader__"}
_REGISTERING = ("register",)  # decorator names (last dotted part) that register at import


def compat_module(upstream_module: str) -> str:
    """``vllm.a.b`` -> ``vllm_fl.compat.a.b``; any other package keeps its name below compat."""
    head, _, rest = upstream_module.partition(".")
    if head == "vllm":
        return f"{COMPAT_PACKAGE}.{rest}" if rest else COMPAT_PACKAGE
    return f"{COMPAT_PACKAGE}.{upstream_module}"


# ---------------------------------------------------------------------------------------------
# One upstream module, cut into top-level units


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
        elif isinstance(node, ast.If) and is_type_checking(node.test) and not node.orelse and all(
            isinstance(child, (ast.Import, ast.ImportFrom)) for child in node.body
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
            unit.kind = "definition" if unit.bound and not (isinstance(node, ast.AnnAssign) and node.value is None) else "other"
        elif index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
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
        imported from the module itself (as the pin has it), before the first definition kept.
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
        pending = list(from_pin)
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


def _binds(node: ast.AST, name: str) -> bool:
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
        ((node.lineno, node.col_offset, node.id) for node in ast.walk(tree)
         if isinstance(node, ast.Name) and node.id in names and isinstance(node.ctx, ast.Load)),
        reverse=True,
    )
    for line, column, name in spots:
        raw = lines[line - 1].encode("utf-8")
        raw = raw[:column] + f"{LIVE_MODULE}.{name}".encode() + raw[column + len(name.encode()):]
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
        elif isinstance(statement, cst.If) and isinstance(statement.body, cst.IndentedBlock) and _is_type_checking_test(statement.test):
            lines = [kept for line in statement.body.body if isinstance(line, cst.SimpleStatementLine)
                     and (kept := _trim_line(line, needed)) is not None]
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
        arg.arg: annotated for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]
        if (annotated := annotation_class_name(arg.annotation)) in names
    }
    rebound = {node.id for node in ast.walk(function) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    found: set[tuple[str, str]] = set()
    for node in ast.walk(function):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in typed
                and node.value.id not in rebound and isinstance(node.ctx, ast.Load)):
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
    """The compat module of ``planned`` (a compat :class:`~pytest_flmigrate.migrate.PlannedFile`):
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


# ---------------------------------------------------------------------------------------------
# Deciding what to backport


@dataclass(frozen=True)
class Use:
    """An import a definition relies on: the binding, and the attributes read through it."""

    binding: ImportBinding
    attributes: frozenset[str] = frozenset()
    origin: str = "vllm"  # top-level package of the code using it

    @property
    def key(self) -> tuple[str, str]:
        return (self.binding.module, self.binding.name or "*")


@dataclass(frozen=True)
class Direct:
    """One definition's direct needs: same-module definitions and imports, or why not."""

    definitions: frozenset[tuple[str, str]] = frozenset()
    uses: tuple[Use, ...] = ()
    shared: frozenset[str] = frozenset()  # same-module names the pin's module also defines
    live: frozenset[str] = frozenset()  # of those, module globals the pin rebinds: read through the module
    lines: int = 0
    failure: str | None = None


@dataclass(frozen=True)
class Closure:
    """Everything one missing name brings along, or why it cannot be backported."""

    definitions: frozenset[tuple[str, str]] = frozenset()
    relocations: dict = field(default_factory=dict)  # import key -> pinned (module, name)
    redirects: dict = field(default_factory=dict)  # import key -> upstream definition (module, name)
    shared: frozenset[tuple[str, str]] = frozenset()  # (module, name) the copies import from the pin
    live: frozenset[tuple[str, str]] = frozenset()  # (module, name) the copies read through the pin's module
    lines: int = 0
    failure: str | None = None


Handled = Callable[[str, str], bool]
"""(module, name) -> True when another mechanism makes the import work (``name`` ``*``: the
whole module), e.g. the migration's own modules, config bridges, catalog renames."""

# what one import a definition relies on needs: nothing, a pinned (module, name) to relocate to,
# an upstream (module, name) to backport, or the reason it cannot work
UseStatus = (
    tuple[Literal["ok"], None]
    | tuple[Literal["relocate", "backport"], tuple[str, str]]
    | tuple[Literal["fail"], str]
)


class Backporter:
    """Closures of upstream definitions over the pin, memoized for a session."""

    def __init__(
        self,
        upstream: Resolver,
        pinned: Resolver,
        relocator: Relocator | None,
        *,
        max_definitions: int = MAX_DEFINITIONS,
        max_lines: int = MAX_LINES,
    ) -> None:
        self.upstream = upstream
        self.pinned = pinned
        self.relocator = relocator
        self.max_definitions = max_definitions
        self.max_lines = max_lines
        self._sources: dict[str, ModuleSource | None] = {}
        self._direct: dict[tuple[str, str], Direct] = {}
        self._uses: dict[Use, UseStatus] = {}

    @functools.cached_property
    def pinned_registrations(self) -> frozenset[str]:
        """Names the pinned vLLM registers (``CustomOp.register("x")`` and the like)."""
        index = self.pinned.indexes.get("vllm")
        return registered_names(index) if index is not None else frozenset()

    def source(self, module: str) -> ModuleSource | None:
        if module not in self._sources:
            info = self.upstream.module(module)
            index = self.upstream.index_for(module)
            found = None
            if info is not None and index is not None:
                path = index.root / info.path
                found = module_source(module, path.read_text(encoding="utf-8"), info.is_package)
                if not found.parsed:
                    found = None
            self._sources[module] = found
        return self._sources[module]

    def definition(self, module: str, name: str) -> tuple[str, str] | None:
        """The upstream (module, name) that ``from module import name`` reaches, when it is a
        top-level class, function or assignment."""
        found = definition_of(self.upstream, module, name)
        return (found.module, found.name) if found is not None else None

    def closure(self, definition: tuple[str, str], handled: Handled) -> Closure:
        """The transitive closure of ``definition``, bounded; ``failure`` says why not."""
        definitions: set[tuple[str, str]] = set()
        relocations: dict = {}
        redirects: dict = {}
        shared: set[tuple[str, str]] = set()
        live: set[tuple[str, str]] = set()
        lines = 0
        todo = [definition]
        while todo:
            current = todo.pop()
            if current in definitions:
                continue
            direct = self.direct(current)
            failure = direct.failure
            wanted = set(direct.definitions)
            for use in direct.uses:
                if failure:
                    break
                if handled(*use.key):
                    continue
                status = self.use_status(use)
                if status[0] == "fail":
                    failure = status[1]
                elif status[0] == "relocate":
                    relocations[use.key] = status[1]
                elif status[0] == "backport":
                    redirects[use.key] = status[1]
                    wanted.add(status[1])
            if failure:
                where = "" if current == definition else f"needs {current[0]}.{current[1]}, which: "
                return Closure(failure=f"{where}{failure}")
            definitions.add(current)
            shared |= {(current[0], name) for name in direct.shared}
            live |= {(current[0], name) for name in direct.live}
            lines += direct.lines
            todo.extend(sorted(wanted - definitions))
            if len(definitions) > self.max_definitions or lines > self.max_lines:
                return Closure(failure=(
                    f"too big to backport: more than {self.max_definitions} definitions or "
                    f"{self.max_lines} lines (reached {len(definitions)} / {lines}); port it by hand"
                ))
        return Closure(frozenset(definitions), relocations, redirects, frozenset(shared), frozenset(live), lines)

    def direct(self, definition: tuple[str, str]) -> Direct:
        if definition not in self._direct:
            self._direct[definition] = self._compute_direct(definition)
        return self._direct[definition]

    def _compute_direct(self, definition: tuple[str, str]) -> Direct:
        module, name = definition
        source = self.source(module)
        if source is None:
            return Direct(failure=f"{module} cannot be read upstream")
        units = [u for u in source.binders.get(name, []) if u.kind in ("definition", "block")]
        if not units:
            return Direct(failure=f"{module}.{name} is not a top-level definition upstream")
        definitions: set[tuple[str, str]] = set()
        shared: set[str] = set()
        live: set[str] = set()
        uses: dict[Use, None] = {}
        lines = 0
        for unit in units:
            lines += unit.lines
            refused = _refused(source.source_of(unit), unit, module, self.pinned_registrations)
            if refused:
                return Direct(failure=f"{refused}; port it by hand")
            names, attributes = source.deps(unit)
            origin = module.split(".")[0]
            for binding in source.nested_imports(unit):  # imports inside functions: same rules
                uses[Use(binding, origin=origin)] = None
            for dependency in sorted(names):
                if dependency in unit.bound:
                    continue
                binders = source.binders.get(dependency)
                if not binders:
                    if dependency in _BUILTINS:
                        continue
                    if source.has_star:
                        return Direct(failure=f"uses {dependency}, which a star import of {module} may bind")
                    return Direct(failure=f"uses {dependency}, bound nowhere in {module}")
                for binder in binders:
                    if binder.kind in ("definition", "block"):
                        if self._pin_defines(module, dependency):
                            if dependency in source.rebound:
                                # rebound at runtime: an imported value would go stale; the copy
                                # reads it through the pin's module, unless it binds it itself
                                if _binds(unit.node, dependency) or LIVE_MODULE in source.binders:
                                    return Direct(failure=(
                                        f"rebinds {module}.{dependency}, a module global of the pin; "
                                        "port it by hand"
                                    ))
                                live.add(dependency)
                                continue
                            read = frozenset(attr for owner, attr in attributes if owner == dependency)
                            problem = self.missing_members(module, dependency, read, (module, dependency))
                            if problem:
                                return Direct(failure=problem)
                            shared.add(dependency)  # the copy uses the pin's own definition
                        else:
                            definitions.add((module, dependency))
                    elif dependency in binder.imports:
                        read = frozenset(attr for owner, attr in attributes if owner == dependency)
                        uses[Use(binder.imports[dependency], read, origin)] = None
        return Direct(frozenset(definitions), tuple(uses), frozenset(shared), frozenset(live), lines)

    def _pin_defines(self, module: str, name: str) -> bool:
        found = self.pinned.resolve(module, name) if self.pinned.has_module(module) else None
        return found is not None and not found.type_checking

    def use_status(self, use: Use) -> UseStatus:
        """("ok", None), ("relocate", pinned (module, name)), ("backport", upstream definition)
        or ("fail", reason) for one import a definition relies on."""
        if use not in self._uses:
            self._uses[use] = self._status(use)
        return self._uses[use]

    def _status(self, use: Use) -> UseStatus:
        binding = use.binding
        if use.origin == "transformers" and _third_party(binding.module):
            return "fail", (
                f"imports {binding.module}: a third-party package upstream transformers needs in "
                "another version than the pinned one"
            )
        if binding.name is None:
            problem = self._check_module(binding.module, use.attributes)
            return ("fail", problem) if problem else ("ok", None)
        key = (binding.module, binding.name)
        if not self.pinned.covers(binding.module) and not self.upstream.covers(binding.module):
            return "ok", None  # external (torch, typing...)
        found = self.pinned.resolve(*key)
        if found is not None and not (found.type_checking and not binding.type_checking):
            if found.kind == "module":
                problem = self._check_module(found.module, use.attributes)
            else:
                problem = self.missing_members(found.module, found.name, use.attributes, key)
            return ("fail", problem) if problem else ("ok", None)
        relocation = self.relocator.for_import(*key) if self.relocator else None
        if relocation is not None:
            problem = self.missing_members(*relocation.pinned, use.attributes, key)
            return ("fail", problem) if problem else ("relocate", relocation.pinned)
        target = self.definition(*key)
        if target is None:
            what = "a module" if self.upstream.has_module(f"{binding.module}.{binding.name}") else "a name"
            return "fail", f"imports {binding.module}.{binding.name}, {what} the pin lacks and that cannot be copied"
        return "backport", target

    def missing_members(
        self, module: str, name: str, attributes: frozenset[str], upstream: tuple[str, str] | None = None
    ) -> str | None:
        """When ``module.name`` is a class of the pin: the first of ``attributes`` it lacks.

        A member the pin's class does not have while a base outside the indexes might
        (``NamedTuple``, ``Enum``...) still counts as missing when the upstream class
        (``upstream``: where the copied code imports it from upstream) defines it itself.
        """
        if not attributes:
            return None
        symbol = self.pinned.resolve(module, name)
        if symbol is None or symbol.kind != "class" or self.pinned.is_protocol(symbol.module, symbol.name):
            return None  # a Protocol is structural: the objects passed may have what it does not declare
        theirs = self.upstream.class_of(self.upstream.resolve(*upstream)) if upstream else None
        for attribute in sorted(attributes):
            member = self.pinned.find_member(symbol.module, symbol.name, attribute)
            if member is None or (member.kind == "unknown" and theirs is not None and theirs.has_member(attribute)):
                near = difflib.get_close_matches(attribute, sorted(self.pinned.members(symbol.module, symbol.name)), n=2, cutoff=0.6)
                return (f"uses {name}.{attribute}, which the pin's {symbol.module}.{symbol.name} lacks"
                        + (f" (nearest there: {', '.join(near)})" if near else ""))
        return None

    def _check_module(self, module: str, attributes: frozenset[str]) -> str | None:
        if not self.pinned.covers(module):
            return f"imports module {module}, which the pin lacks" if self.upstream.covers(module) else None
        info = self.pinned.module(module)
        if info is None:
            return f"imports module {module}, which the pin lacks"
        for attribute in sorted(attributes):
            if self.pinned.resolve(module, attribute) is None and not info.dynamic_getattr:
                return f"uses {module}.{attribute}, which the pin lacks"
        return None


# Decorators that mean the same under transformers 4 and 5 (the standard library's)
_PLAIN_DECORATORS = frozenset({
    "dataclass", "dataclasses.dataclass", "functools.lru_cache", "lru_cache", "functools.cache", "cache",
    "functools.wraps", "functools.total_ordering", "total_ordering", "contextmanager",
    "contextlib.contextmanager", "final", "typing.final", "overload", "typing.overload", "runtime_checkable",
})
# Third-party packages whose APIs transformers 4 and 5 code use alike (others, such as
# huggingface_hub or tokenizers, are pinned to other major versions by transformers 5)
_STABLE_THIRD_PARTY = frozenset({"torch", "numpy", "PIL", "typing_extensions", "packaging", "regex"})


def _third_party(module: str) -> bool:
    top = module.split(".")[0]
    return top not in sys.stdlib_module_names and top not in _STABLE_THIRD_PARTY and top not in ("transformers", "vllm", "__future__")


def _registered_name(decorator: ast.Call) -> str | None:
    """The literal name a registering decorator registers (``@CustomOp.register("x")``)."""
    if decorator.args and isinstance(decorator.args[0], ast.Constant) and isinstance(decorator.args[0].value, str):
        return decorator.args[0].value
    for keyword in decorator.keywords:
        if keyword.arg == "name" and isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
            return keyword.value.value
    return None


_REGISTRATION = re.compile(r"""\.register\(\s*(?:name\s*=\s*)?["']([^"']+)["']""")


def registered_names(index) -> frozenset[str]:
    """Every name the tree registers with a ``.register("name")`` call (custom ops, layers...)."""
    found: set[str] = set()
    for path in index.paths().values():
        try:
            text = (index.root / path).read_text(encoding="utf-8")
        except OSError:
            continue
        if ".register(" in text:
            found.update(_REGISTRATION.findall(text))
    return frozenset(found)


def _refused(text: str, unit: Unit, module: str = "", registered: frozenset[str] | None = None) -> str | None:
    """Why copying this unit would change behaviour, or None.

    ``registered``: the names the pin registers itself; a copy registering a new name (a custom
    op the pin never had) is allowed, one the pin also registers would collide at import.
    """
    node = unit.node
    if module.split(".")[0] == "transformers":
        for decorator in getattr(node, "decorator_list", []):
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            name = ast.unparse(target)
            if name not in _PLAIN_DECORATORS:
                return (
                    f"{getattr(node, 'name', '?')} is decorated with @{name}, transformers 5 machinery "
                    "the pinned transformers lacks (bridge or port it by hand)"
                )
    for decorator in getattr(node, "decorator_list", []):
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = (ast.unparse(target) or "").rsplit(".", 1)[-1]
        if isinstance(decorator, ast.Call) and name.startswith(_REGISTERING):
            key = _registered_name(decorator)
            if key is None or registered is None or key in registered:
                taken = f"'{key}' is registered by the pin already" if key and registered and key in registered else (
                    "under a name not known statically" if key is None else "and the pin's registrations are unknown")
                return f"{getattr(node, 'name', '?')} registers itself at import (@{ast.unparse(target)}(...)), {taken}"
    if "torch.ops." in text:
        return "it calls torch.ops kernels the pin may not register"
    if "direct_register_custom_op" in text:
        return "it registers a custom op at import"
    return None
