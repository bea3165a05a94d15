"""Backports: upstream helpers the pin lacks, copied into ``vllm_fl/compat/`` (catalog P16).

A name a migrated file imports that the pinned vLLM defines nowhere (after relocations,
:mod:`pytest_flmigrate.autofix.relocate`) is copied from upstream when everything it needs resolves in
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
license header survive; :mod:`pytest_flmigrate.autofix.compat_source`), then patched like any migrated file (P1 makes its relative imports
absolute, P14/P15/P16 redirect its imports).

Refused, whatever the size (a copy would change behaviour or break at import): definitions
that register themselves at import time (``@CustomOp.register(...)``, ``register_*``
decorators: the pin already holds those names), code calling ``torch.ops.*`` kernels (the pin
may not register them), attribute reads of pinned modules the pin lacks (``envs.NEW_FLAG``,
``ops.new_kernel``), names bound by star imports or nowhere; from transformers, a definition with a
decorator other than the standard library's and P31's doc-only ones, and a class whose pinned base
lacks a method upstream's base has that the class overrides (a hook the pin never calls: transformers
5's processors) or calls.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import functools
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pytest_flmigrate.autofix.compat_source import LIVE_MODULE, ImportBinding, ModuleSource, Unit, binds, module_source
from pytest_flmigrate.autofix.env_flags import ENVS
from pytest_flmigrate.autofix.relocate import Relocator, definition_of, protocol_gap
from pytest_flmigrate.index.config_objects import config_object_classes
from pytest_flmigrate.index.resolve import Resolver, Symbol
from pytest_flmigrate.patches import p14_transformers_renames, p24_member_drift, p31_transformers5_processors

MAX_DEFINITIONS = 30
MAX_LINES = 1500
COMPAT_PACKAGE = "vllm_fl.compat"
_BUILTINS = frozenset(dir(builtins)) | {
    "__name__",
    "__file__",
    "__doc__",
    "__spec__",
    "__package__",
    "__path__",
    "__builtins__",
    "__loader__",
}
_REGISTERING = ("register",)  # decorator names (last dotted part) that register at import


def compat_module(upstream_module: str) -> str:
    """``vllm.a.b`` -> ``vllm_fl.compat.a.b``; any other package keeps its name below compat."""
    head, _, rest = upstream_module.partition(".")
    if head == "vllm":
        return f"{COMPAT_PACKAGE}.{rest}" if rest else COMPAT_PACKAGE
    return f"{COMPAT_PACKAGE}.{upstream_module}"


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
    tuple[Literal["ok"], None] | tuple[Literal["relocate", "backport"], tuple[str, str]] | tuple[Literal["fail"], str]
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
        member_drift: bool = False,
        env_flags: frozenset[str] = frozenset(),
        renames: bool = False,
        processors: bool = False,
    ) -> None:
        self.upstream = upstream
        self.pinned = pinned
        self.relocator = relocator
        self.member_drift = member_drift  # P24 rewrites the copies' reads of its members
        self.env_flags = env_flags  # flags of vllm.envs P27 rewrites the copies' reads of
        self.renames = renames  # P14 imports transformers 5 names under their 4.x spelling
        self.processors = processors  # P31 drops doc-only decorators, declares processors' parts
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

    def lazy_provider(self, module: str, name: str) -> tuple[str, str] | None:
        """The upstream module ``__getattr__`` (PEP 562) that provides ``from module import name``
        when upstream computes the name on first access (``PIN_MEMORY``), else None.

        A copy of that ``__getattr__`` in the compat module provides the name the same way: the
        import runs it, as upstream's import does."""
        found = self.upstream.resolve(module, name)
        if found is None or found.kind != "lazy":
            return None
        source = self.source(found.module)
        binders = source.binders.get("__getattr__", []) if source is not None else []
        if not any(unit.kind == "definition" for unit in binders):
            return None
        return (found.module, "__getattr__")

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
                return Closure(
                    failure=(
                        f"too big to backport: more than {self.max_definitions} definitions or "
                        f"{self.max_lines} lines (reached {len(definitions)} / {lines}); port it by hand"
                    )
                )
        for key, _ in list(relocations.items()):
            # one name, two spellings in the copied code (a package re-export and its defining
            # module): the copy holds upstream's definition anyway, so every spelling uses it
            copied = self.definition(*key)
            if copied in definitions:
                del relocations[key]
                redirects[key] = copied
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
            refused = _refused(
                source.source_of(unit), unit, module, self.pinned_registrations, self._translated_decorators
            ) or self._transformers5_class(source, unit, module)
            if refused:
                return Direct(failure=f"{refused}; port it by hand")
            unread = self._config_fields_missing(unit.node)
            if unread:
                return Direct(failure=f"{unread}; port it by hand")
            names, attributes = source.deps(unit)
            names = names - _only_in_decorators(unit.node, self._translated_decorators)
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
                        if self._pin_defines(module, dependency) or self._pin_renames(module, dependency):
                            if dependency in source.rebound:
                                # rebound at runtime: an imported value would go stale; the copy
                                # reads it through the pin's module, unless it binds it itself
                                if binds(unit.node, dependency) or LIVE_MODULE in source.binders:
                                    return Direct(
                                        failure=(
                                            f"rebinds {module}.{dependency}, a module global of the pin; "
                                            "port it by hand"
                                        )
                                    )
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
                        binding = binder.imports[dependency]
                        read = frozenset(attr for owner, attr in attributes if owner == dependency)
                        read = self._not_translated(binding, read, source.source_of(unit))
                        uses[Use(binding, read, origin)] = None
        return Direct(frozenset(definitions), tuple(uses), frozenset(shared), frozenset(live), lines)

    @property
    def _translated_decorators(self) -> frozenset[str]:
        """The decorators of transformers 5 a selected patch drops from the copies (P31)."""
        return frozenset(p31_transformers5_processors.DOC_ONLY_DECORATORS) if self.processors else frozenset()

    def _transformers5_class(self, source: ModuleSource, unit: Unit, module: str) -> str | None:
        """Why a class copied from transformers would not work on the pin's transformers, or None:
        a processor part P31 cannot declare for 4.x, or a base class of the pin that lacks what
        upstream's base has and the class overrides (a hook the pin's base never calls) or calls
        (through ``self``/``super()``)."""
        node = unit.node
        if module.split(".")[0] != "transformers" or not isinstance(node, ast.ClassDef):
            return None
        if self.processors:
            unsupported = p31_transformers5_processors.unsupported_parts(node)
            if unsupported:
                return unsupported
        own = {s.name for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
        called = {
            read.attr
            for read in ast.walk(node)
            if isinstance(read, ast.Attribute)
            and (
                (isinstance(read.value, ast.Name) and read.value.id == "self")
                or (isinstance(read.value, ast.Call) and getattr(read.value.func, "id", None) == "super")
            )
        }
        for base in node.bases:
            pair = self._shared_base(source, base)
            if pair is None:
                continue
            theirs, ours = pair

            def lacking(attribute: str) -> bool:
                member = self.upstream.find_member(theirs.module, theirs.name, attribute)
                return (
                    member is not None
                    and member.function is not None
                    and self.pinned.find_member(ours.module, ours.name, attribute) is None
                )

            overridden = sorted(name for name in own if lacking(name))
            if overridden:
                return (
                    f"{node.name} overrides {', '.join(overridden)} of upstream's {theirs.module}.{theirs.name}, "
                    f"which the pin's {ours.module}.{ours.name} lacks and never calls"
                )
            missing = sorted(name for name in called - own if lacking(name))
            if missing:
                return f"{node.name} calls {', '.join(missing)}, which the pin's {ours.module}.{ours.name} lacks"
        return None

    def _shared_base(self, source: ModuleSource, base: ast.expr):
        """(upstream's class, the pin's class) of a base the copy imports from the pin, or None."""
        if not isinstance(base, ast.Name):
            return None
        binding = next((u.imports[base.id] for u in source.binders.get(base.id, []) if base.id in u.imports), None)
        if binding is None or binding.name is None:
            return None
        theirs = self.upstream.resolve(binding.module, binding.name)
        pinned_name = p14_transformers_renames.RENAMES.get((binding.module, binding.name)) if self.renames else None
        ours = (
            self.pinned.resolve(binding.module, pinned_name or binding.name)
            if self.pinned.has_module(binding.module)
            else None
        )
        if theirs is None or ours is None or theirs.kind != "class" or ours.kind != "class":
            return None
        return theirs, ours

    @functools.cached_property
    def _config_objects(self) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
        return config_object_classes(self.pinned), config_object_classes(self.upstream)

    def _config_fields_missing(self, node: ast.AST) -> str | None:
        """Why the copy would read a field of a vLLM config object (``cache_config.X``) that
        upstream's config class has and the pin's lacks (an ``AttributeError`` at run time), or None.
        Fields P24 rewrites (with P24 selected) are not missing."""
        pinned, upstream = self._config_objects
        for read in ast.walk(node):
            if not isinstance(read, ast.Attribute) or not isinstance(read.ctx, ast.Load):
                continue
            holder = read.value.attr if isinstance(read.value, ast.Attribute) else getattr(read.value, "id", None)
            if holder not in pinned or holder not in upstream:
                continue
            (module, cls), theirs = pinned[holder], upstream[holder]
            if self.member_drift and p24_member_drift.drift_for(cls, read.attr) is not None:
                continue
            if self.pinned.find_member(module, cls, read.attr) is not None:
                continue
            if self.upstream.find_member(*theirs, read.attr) is not None:
                return self._lacks(cls, read.attr, module, cls)
        return None

    def _not_translated(self, binding: ImportBinding, read: frozenset[str], text: str) -> frozenset[str]:
        """``read`` (members read on the class ``binding`` imports) without those P24 rewrites
        on every read in ``text``."""
        owner = binding.name
        if not self.member_drift or not read or owner is None or not p24_member_drift.is_owner(binding.module, owner):
            return read
        left = p24_member_drift.untranslated(text, {(owner, attr) for attr in read})
        return frozenset(attr for _, attr in left)

    def _pin_renames(self, module: str, name: str) -> bool:
        """Whether the pin defines ``module.name`` under the transformers 4 spelling P14 imports it
        by (``PreTrainedConfig`` -> ``PretrainedConfig``): the copy then uses the pin's class."""
        renamed = p14_transformers_renames.RENAMES.get((module, name)) if self.renames else None
        return renamed is not None and self._pin_defines(module, renamed)

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
            gap = self._protocol_gap(key, found) if problem is None and found.kind == "class" else None
            if gap is not None:  # the pin's class of the same name lacks an operator upstream's has (``|=``)
                target = self.definition(*key)
                if target is not None:
                    return "backport", target
                problem = gap
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

    def _protocol_gap(self, key: tuple[str, str], pinned: Symbol) -> str | None:
        """Why the pin's class ``pinned`` is not upstream's class of the import ``key`` for code
        using its operators (:func:`relocate.protocol_gap`), or None."""
        theirs = self.upstream.class_of(self.upstream.resolve(*key))
        return protocol_gap(theirs, self.pinned, pinned) if theirs is not None else None

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
                return self._lacks(name, attribute, symbol.module, symbol.name)
        return None

    def _lacks(self, name: str, attribute: str, module: str, cls: str) -> str:
        """Why a copy reading ``name.attribute`` is refused: the pin's ``module.cls`` lacks it."""
        near = difflib.get_close_matches(attribute, sorted(self.pinned.members(module, cls)), n=2, cutoff=0.6)
        nearest = f" (nearest there: {', '.join(near)})" if near else ""
        return f"uses {name}.{attribute}, which the pin's {module}.{cls} lacks{nearest}"

    def _check_module(self, module: str, attributes: frozenset[str]) -> str | None:
        if not self.pinned.covers(module):
            return f"imports module {module}, which the pin lacks" if self.upstream.covers(module) else None
        info = self.pinned.module(module)
        if info is None:
            return f"imports module {module}, which the pin lacks"
        for attribute in sorted(attributes):
            if module == ENVS and attribute in self.env_flags:
                continue
            if self.pinned.resolve(module, attribute) is None and not info.dynamic_getattr:
                return f"uses {module}.{attribute}, which the pin lacks"
        return None


# Decorators that mean the same under transformers 4 and 5 (the standard library's)
_PLAIN_DECORATORS = frozenset(
    {
        "dataclass",
        "dataclasses.dataclass",
        "functools.lru_cache",
        "lru_cache",
        "functools.cache",
        "cache",
        "functools.wraps",
        "functools.total_ordering",
        "total_ordering",
        "contextmanager",
        "contextlib.contextmanager",
        "final",
        "typing.final",
        "overload",
        "typing.overload",
        "runtime_checkable",
    }
)
# Third-party packages whose APIs transformers 4 and 5 code use alike (others, such as
# huggingface_hub or tokenizers, are pinned to other major versions by transformers 5)
_STABLE_THIRD_PARTY = frozenset({"torch", "numpy", "PIL", "typing_extensions", "packaging", "regex"})


def _third_party(module: str) -> bool:
    top = module.split(".")[0]
    return (
        top not in sys.stdlib_module_names
        and top not in _STABLE_THIRD_PARTY
        and top not in ("transformers", "vllm", "__future__")
    )


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


def _only_in_decorators(node: ast.AST, dropped: frozenset[str]) -> set[str]:
    """The names ``node`` reads only in decorators a patch drops from the copy (``dropped``): the
    copy does not need them."""
    if not dropped:
        return set()
    inside: set[int] = set()
    for definition in ast.walk(node):
        for decorator in getattr(definition, "decorator_list", []):
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if ast.unparse(target).rsplit(".", 1)[-1] in dropped:
                inside |= {id(name) for name in ast.walk(decorator)}
    names = [name for name in ast.walk(node) if isinstance(name, ast.Name)]
    return {n.id for n in names if id(n) in inside} - {n.id for n in names if id(n) not in inside}


def _refused(
    text: str,
    unit: Unit,
    module: str = "",
    registered: frozenset[str] | None = None,
    translated: frozenset[str] = frozenset(),
) -> str | None:
    """Why copying this unit would change behaviour, or None.

    ``registered``: the names the pin registers itself; a copy registering a new name (a custom
    op the pin never had) is allowed, one the pin also registers would collide at import.
    ``translated``: decorators of transformers a selected patch drops from the copy (P31).
    """
    node = unit.node
    if module.split(".")[0] == "transformers":
        for decorator in getattr(node, "decorator_list", []):
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            name = ast.unparse(target)
            if name not in _PLAIN_DECORATORS and name.rsplit(".", 1)[-1] not in translated:
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
                taken = (
                    f"'{key}' is registered by the pin already"
                    if key and registered and key in registered
                    else (
                        "under a name not known statically"
                        if key is None
                        else "and the pin's registrations are unknown"
                    )
                )
                return f"{getattr(node, 'name', '?')} registers itself at import (@{ast.unparse(target)}(...)), {taken}"
    if "torch.ops." in text:
        return "it calls torch.ops kernels the pin may not register"
    if "direct_register_custom_op" in text:
        return "it registers a custom op at import"
    return None
