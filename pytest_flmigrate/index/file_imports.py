"""The imports of one file and whether each works against the indexes (pinned vLLM, its
transformers, the plugin's ``vllm_fl``): which ``from M import n`` of a migrated file fail
(:func:`unresolved_imports`), why (:func:`import_failure`), and where else the pin defines the
name (:func:`check_import`, through :class:`~pytest_flmigrate.index.resolve.Resolver`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from pytest_flmigrate.index.records import TreeIndex
from pytest_flmigrate.index.resolve import Resolver, Symbol, is_compiled_module
from pytest_flmigrate.index.symbols import absolute_module, is_type_checking, parse_source


@dataclass(frozen=True)
class ImportRef:
    """One name a file imports: ``from module import name [as asname]`` or ``import module``."""

    line: int
    module: str  # absolute (relative imports resolved against the file's package)
    name: str | None  # None for ``import module``; ``*`` for a star import
    asname: str | None = None
    level: int = 0  # dots of a relative import as written
    type_checking: bool = False  # under ``if TYPE_CHECKING:``
    nested: bool = False  # inside a function or class body

    @property
    def bound(self) -> str:
        if self.name is None:
            return self.asname or self.module.split(".")[0]
        return self.asname or self.name

    @property
    def statement(self) -> str:
        if self.name is None:
            return f"import {self.module}" + (f" as {self.asname}" if self.asname else "")
        return f"from {self.module} import {self.name}" + (f" as {self.asname}" if self.asname else "")


@dataclass(frozen=True)
class UnresolvedImport:
    """An import of a migrated file that does not work against the pinned trees.

    reason: ``module`` (no such module), ``name`` (the module lacks the name),
    ``type-checking`` (the module binds it only under TYPE_CHECKING), ``relative`` (a relative
    import left in a plugin file). elsewhere: modules of the pin that define the name (best
    first). nearest: the closest names the module does provide.
    """

    ref: ImportRef
    reason: str
    elsewhere: tuple[Symbol, ...] = ()
    nearest: tuple[str, ...] = ()

    @property
    def line(self) -> int:
        return self.ref.line

    def describe(self, where: str = "the pin", hints: bool = True) -> str:
        """What fails against ``where`` (``the pinned vllm 0.13.0``, ``the plugin``); with
        ``hints``, then where the pin defines the name or the nearest names."""
        ref = self.ref
        if self.reason == "module" or ref.name is None:
            text = f"no module {ref.module} in {where}"
        elif self.reason == "type-checking":
            text = f"{ref.module} binds {ref.name} only under TYPE_CHECKING in {where}"
        else:
            text = f"{ref.module} has no {ref.name} in {where}"
        if not hints:
            return text
        if self.elsewhere:
            text += "; the pin defines it in " + ", ".join(s.module for s in self.elsewhere[:3])
        elif self.nearest:
            text += "; nearest there: " + ", ".join(self.nearest)
        return text


def imports_of(source: str | ast.Module, module: str, is_package: bool = False) -> list[ImportRef]:
    """Every import of a file, top-level or nested, with relative ones made absolute."""
    tree = parse_source(source) if not isinstance(source, ast.Module) else source
    if tree is None:
        return []
    package = module if is_package else module.rpartition(".")[0]
    refs: list[ImportRef] = []

    def visit(body: list[ast.stmt], checking: bool, nested: bool) -> None:
        for node in body:
            if isinstance(node, ast.If):
                visit(node.body, checking or is_type_checking(node.test), nested)
                visit(node.orelse, checking, nested)
            elif isinstance(node, ast.ImportFrom):
                origin = absolute_module(package, node.level, node.module)
                for alias in node.names:
                    refs.append(ImportRef(node.lineno, origin, alias.name, alias.asname, node.level, checking, nested))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    refs.append(ImportRef(node.lineno, alias.name, None, alias.asname, 0, checking, nested))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(node.body, checking, True)
            else:
                for child_body in _bodies(node):
                    visit(child_body, checking, nested)

    visit(tree.body, False, False)
    return refs


def _bodies(node: ast.stmt) -> list[list[ast.stmt]]:
    bodies = []
    for name in ("body", "orelse", "finalbody"):
        value = getattr(node, name, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            bodies.append(value)
    for handler in getattr(node, "handlers", None) or []:
        bodies.append(handler.body)
    for case in getattr(node, "cases", None) or []:
        bodies.append(case.body)
    return bodies


def check_import(ref: ImportRef, resolver: Resolver, under: str = "") -> UnresolvedImport | None:
    """None when ``ref`` works against the resolver's trees (or is external); else the
    problem with where the pin defines the name and what is close to it."""
    reason = import_failure(ref, resolver)
    if reason is None:
        return None
    search_under = under or ref.module.split(".")[0]
    if reason == "module" or ref.name is None:
        elsewhere = resolver.locate(ref.name, search_under) if ref.name not in (None, "*") else ()
        return UnresolvedImport(ref, reason, elsewhere, resolver.nearest_modules(ref.module))
    elsewhere = tuple(s for s in resolver.locate(ref.name, search_under) if s.module != ref.module)
    return UnresolvedImport(ref, reason, elsewhere, resolver.nearest(ref.module, ref.name))


def unresolved_imports(
    source: str | ast.Module, module: str, resolver: Resolver, is_package: bool = False, under: str = ""
) -> list[UnresolvedImport]:
    """The imports of a (migrated) file that fail against the resolver's trees.

    ``module`` is the file's own dotted name (relative imports resolve against it). Imports of
    packages no index covers are skipped, as are compiled modules of other platforms
    (:data:`COMPILED_MODULES`). ``under`` limits where alternatives are searched
    (default: the import's own top-level package).
    """
    problems = []
    for ref in imports_of(source, module, is_package):
        problem = check_import(ref, resolver, under)
        if problem is not None:
            problems.append(problem)
    return problems


def self_check(
    index: TreeIndex, extra: Iterable[TreeIndex] = (), type_checking: bool = False
) -> list[tuple[str, UnresolvedImport]]:
    """Every in-tree import of ``index``'s own package that fails against the index itself.

    Returns ``(importing module, problem)`` pairs; modules of other platforms are exempt
    (:func:`is_compiled_module`), and so are imports under ``if TYPE_CHECKING:`` unless
    ``type_checking`` (they never run; vLLM 0.32 has one naming a module it lacks). A sound
    index of a release tree returns nothing.
    """
    resolver = Resolver([index, *extra])
    found: list[tuple[str, UnresolvedImport]] = []
    for module, info in sorted(index.modules.items()):
        path = index.root / info.path
        try:
            source = path.read_bytes()
        except OSError:
            continue
        tree = parse_source(source, str(path))
        if tree is None:
            continue
        for ref in imports_of(tree, module, info.is_package):
            if ref.module.split(".")[0] != index.package or (ref.type_checking and not type_checking):
                continue
            problem = check_import(ref, resolver)
            if problem is not None:
                found.append((module, problem))
    return found


def import_failure(ref: ImportRef, resolver: Resolver) -> str | None:
    """Why ``ref`` fails against the resolver's trees (``module``, ``name`` or
    ``type-checking``), or None when it works or is external: :func:`check_import`'s verdict
    without the alternatives it looks up for messages (cheap enough to count a whole batch)."""
    if not resolver.covers(ref.module) or is_compiled_module(ref.module):
        return None
    if not resolver.has_module(ref.module):
        return "module"
    if ref.name is None or ref.name == "*":
        return None
    found = resolver.resolve(ref.module, ref.name)
    if found is not None and not (found.type_checking and not ref.type_checking):
        return None
    return "type-checking" if found is not None else "name"
