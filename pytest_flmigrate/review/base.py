"""What a review finding is, what a check sees, and the registry of checks.

A check is a pure function ``check(context, view) -> list[Finding]`` over one file of the
migration (a :class:`FileView`), given the :class:`ReviewContext` of the whole migration (the
pinned trees, the plugin as written, the upstream trees when known). Checks never write.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.file_imports import ImportRef, imports_of
from pytest_flmigrate.index.records import ModuleInfo, TreeIndex
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.index.symbols import module_info_from_source, parse_source
from pytest_flmigrate.layout import PLUGIN_PACKAGE

Node = TypeVar("Node", bound=ast.AST)


@dataclass(frozen=True)
class Finding:
    """One problem: where, which check, the symbol, what the pin has instead, and the fix.

    ``fix`` is a catalog patch id (``"P9"``) when a patch of the catalog rewrites it, else
    ``"manual: <one-line suggestion>"``.
    """

    check: str
    file: str
    line: int
    symbol: str
    message: str
    fix: str

    def format(self) -> str:
        return f"{self.file}:{self.line}: [{self.check}] {self.symbol}: {self.message} (fix: {self.fix})"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MigratedFile:
    """A file the review looks at: its path in the plugin, its module, its role."""

    target: str  # e.g. vllm_fl/models/qwen3_5.py
    module: str  # e.g. vllm_fl.models.qwen3_5
    role: str  # model, sibling, config, compat, registration
    upstream_module: str | None = None  # where it came from upstream
    is_package: bool = False

    @classmethod
    def at(cls, target: str, role: str, upstream_module: str | None = None) -> MigratedFile:
        path = Path(target)
        parts = list(path.with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        return cls(target, ".".join(parts), role, upstream_module, is_package)


@dataclass
class ReviewContext:
    """Everything the checks may consult.

    pinned_indexes: the pinned vLLM and its transformers; plugin_dir: the plugin checkout
    (its ``vllm_fl`` is indexed as written); upstream_indexes: upstream vLLM and its
    transformers, for "upstream had" messages (optional); files: the migrated files;
    bridge: (model_type, config class, plugin config module) when step 4 wrote a config bridge;
    config_class: the unit's config class name (bridged or not); architectures:
    (architecture, class) pairs and plugin_module, the module registering them.
    catalog: patch NAME -> id of the catalog patches that apply to the pin.
    claims: ``(kind, module, name) -> bool``, whether the table-driven patch of ``kind``
    (``relocate``, ``backport``, ``call-arguments``; see review/patch_ids.py) fixes that very name;
    step 4's automatic fixes provide it, and without it those findings stay ``manual:``.
    unfixed: ``(module, name)`` of an import -> why step 4 could not relocate or backport it
    (``MigrationPlan.unfixed``), added to its finding; ``("module.Class", member)`` of a pinned
    callee -> why step 4 could not fix a call's signature drift.
    """

    plugin_dir: Path
    pinned_indexes: list[TreeIndex]
    files: list[MigratedFile]
    upstream_indexes: list[TreeIndex] = field(default_factory=list)
    model_type: str | None = None
    config_class: str | None = None
    bridge: tuple[str, str, str] | None = None
    architectures: tuple[tuple[str, str], ...] = ()
    plugin_module: str | None = None
    catalog: dict[str, str] = field(default_factory=dict)
    claims: Callable[[str, str, str], bool] | None = None
    unfixed: dict[tuple[str, str], str] = field(default_factory=dict)
    _views: dict[str, FileView] = field(default_factory=dict, init=False, repr=False)

    @cached_property
    def plugin_index(self) -> TreeIndex:
        return index_directory(self.plugin_dir, PLUGIN_PACKAGE)

    @cached_property
    def resolver(self) -> Resolver:
        """Pinned vLLM + pinned transformers + the plugin's vllm_fl as written."""
        return Resolver([*self.pinned_indexes, self.plugin_index])

    @cached_property
    def pinned_resolver(self) -> Resolver:
        """The pinned vLLM and transformers alone (what the pin has, whatever the plugin holds)."""
        return Resolver(self.pinned_indexes)

    @cached_property
    def upstream(self) -> Resolver | None:
        return Resolver(self.upstream_indexes) if self.upstream_indexes else None

    @cached_property
    def pinned_packages(self) -> frozenset[str]:
        return frozenset(index.package for index in self.pinned_indexes)

    @cached_property
    def pinned_versions(self) -> dict[str, str]:
        return {index.package: index.version for index in self.pinned_indexes}

    def is_pinned(self, module: str) -> bool:
        """Whether ``module`` belongs to the pinned trees (not the plugin, not external)."""
        return module.split(".")[0] in self.pinned_packages

    def view(self, file: MigratedFile) -> FileView:
        if file.target not in self._views:
            self._views[file.target] = FileView(self, file)
        return self._views[file.target]

    def patch(self, name: str) -> str | None:
        """The id of the catalog patch named ``name`` when it applies to this pin."""
        return self.catalog.get(name)

    @property
    def config_files(self) -> list[MigratedFile]:
        return [f for f in self.files if f.role == "config"]


class FileView:
    """One file: text, AST, its module info, parents of nodes, enclosing class/function."""

    def __init__(self, context: ReviewContext, file: MigratedFile) -> None:
        self.context = context
        self.file = file
        path = context.plugin_dir / file.target
        self.exists = path.exists()
        try:
            self.text = path.read_bytes().decode("utf-8") if self.exists else ""
            tree = parse_source(self.text, file.target)
        except UnicodeDecodeError:  # a hand edit saved in another encoding: a finding, not a traceback
            self.text, tree = "", None
        self.parse_error = tree is None
        self.tree = tree or ast.Module(body=[], type_ignores=[])

    @property
    def module(self) -> str:
        return self.file.module

    @property
    def target(self) -> str:
        return self.file.target

    @property
    def resolver(self) -> Resolver:
        """What names resolve through: the pinned trees and the plugin as written."""
        return self.context.resolver

    @cached_property
    def info(self) -> ModuleInfo:
        indexed = self.context.plugin_index.modules.get(self.module)
        if indexed is not None:
            return indexed
        return module_info_from_source(self.text, self.module, self.file.is_package, self.target)

    @cached_property
    def imports(self) -> list[ImportRef]:
        return imports_of(self.tree, self.module, self.file.is_package)

    @cached_property
    def parents(self) -> dict[ast.AST, ast.AST]:
        parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                parents[child] = node
        return parents

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        while node in self.parents:
            node = self.parents[node]
            yield node

    def enclosing_function(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return ancestor
        return None

    def enclosing_class(self, node: ast.AST) -> ast.ClassDef | None:
        """The class whose method (directly) holds ``node``."""
        function = self.enclosing_function(node)
        while function is not None:
            parent = self.parents.get(function)
            if isinstance(parent, ast.ClassDef):
                return parent
            function = self.enclosing_function(function)
        return None

    def top_classes(self) -> list[ast.ClassDef]:
        return [node for node in self.tree.body if isinstance(node, ast.ClassDef)]

    def nodes(self, kind: type[Node]) -> Iterator[Node]:
        """Every node of ``kind`` in the file, in ``ast.walk`` order."""
        for node in ast.walk(self.tree):
            if isinstance(node, kind):
                yield node

    def finding(self, check: str, node_or_line: ast.AST | int, symbol: str, message: str, fix: str) -> Finding:
        line = node_or_line if isinstance(node_or_line, int) else getattr(node_or_line, "lineno", 0)
        return Finding(check, self.target, line, symbol, message, fix)


class SourceView(FileView):
    """A file given as a tree under a module name, its names resolved through ``resolver``: what
    a name or a call refers to (review/names.py, types.py, calls.py) for a file that is not the
    plugin's (step 4 reads upstream files against the pin, :mod:`pytest_flmigrate.autofix.drift`)."""

    def __init__(self, resolver: Resolver, module: str, tree: ast.Module, is_package: bool = False) -> None:
        self._resolver = resolver
        self.file = MigratedFile(f"<{module}>", module, "model", module, is_package)
        self.exists, self.text, self.parse_error, self.tree = True, "", False, tree

    @property
    def resolver(self) -> Resolver:
        return self._resolver

    @cached_property
    def info(self) -> ModuleInfo:
        found = self._resolver.module(self.module)
        assert found is not None, f"{self.module}: a source view's resolver holds its module"
        return found


CheckFunction = Callable[[ReviewContext, FileView], list[Finding]]


@dataclass(frozen=True)
class Check:
    id: str
    roles: frozenset[str]  # file roles the check looks at
    summary: str
    function: CheckFunction

    def applies(self, file: MigratedFile) -> bool:
        return file.role in self.roles


CHECKS: dict[str, Check] = {}
# compat modules (step 4's backports into vllm_fl/compat/) are code the migration writes: the
# same checks look at them, so a copy that reads what the pin's objects lack is found at its line
CODE_ROLES = frozenset({"model", "sibling", "config", "compat"})
MODEL_ROLES = frozenset({"model", "sibling", "compat"})


def check(check_id: str, roles: frozenset[str] = CODE_ROLES) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under ``check_id`` for files of ``roles``."""

    def register(function: CheckFunction) -> CheckFunction:
        doc = (function.__doc__ or check_id).strip().splitlines()[0]
        CHECKS[check_id] = Check(check_id, frozenset(roles), doc, function)
        return function

    return register


def manual(suggestion: str) -> str:
    return f"manual: {suggestion}"
