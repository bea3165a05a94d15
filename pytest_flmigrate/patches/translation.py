"""What the API-translation patches (P18-P21, P26, P32, P33) share: the uses of one upstream API in a file,
the decision on it, and whether a pin has the gap they fill.

A translation rewrites a file only when *every* use of the API has a pinned spelling with the
same behaviour: :class:`Uses` collects them (the local names the API is imported under, each
call, the other references, string literals that name upstream-only parameters), the patch's
:class:`Translation` decides once per file (the file's checks, then each call's), its transformer
(:class:`Translated`) rewrites only a file so decided, and :func:`replace_alias` swaps the API for
the pin's names in its ``from`` imports. A file a translation leaves alone is refused at step 4
(:class:`Refused`: the line and why); a patch translating several APIs decides over all of them
(:class:`Translations`).

Some translations point the imports at a shim (``pytest_flmigrate/autofix/shims/``, written as
``vllm_fl/compat/<stem>.py``) whose signatures mirror upstream's (:class:`ShimRedirect`;
:func:`shim_function` reads what a shim accepts). A translation applies to a pin that lacks its
API, found by comparing the trees (:func:`api_gap`), not by a version range: at a pin that has the
API the import resolves and nothing is translated; at a pin whose signatures reject the shim's
calls the shim would fail, so the translation does not apply either (step 4 checks that:
:func:`pytest_flmigrate.autofix.planner.for_pin`).
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from pytest_flmigrate.index.symbols import absolute_module

from .base import PatchContext
from .imports import ImportRedirectTransformer, Location, small_statements
from .syntax import dotted_name, drop_items, parsed

if TYPE_CHECKING:
    from pytest_flmigrate.index.resolve import Resolver

NOT_LITERAL = object()
"""What :func:`literal` returns for an expression that is not a Python literal."""
SHIMS = Path(__file__).resolve().parent.parent / "autofix" / "shims"
"""The shim modules a translation may point imports at (written as ``vllm_fl/compat/<stem>.py``)."""
COMPAT_PACKAGE = "vllm_fl.compat"


@dataclass(frozen=True)
class Api:
    """An upstream API: its name and the modules a migrated file may import it from."""

    name: str
    modules: tuple[str, ...]


@dataclass(frozen=True)
class Refused:
    """Why a translation leaves a file alone: the line of the use it cannot translate and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


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
    callee (``others``), class bases, and the attributes and string literals of the module
    (each node kept, for its line)."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names
        self.calls: list[cst.Call] = []
        self.others: list[cst.Name] = []
        self.bases: list[cst.Arg] = []
        self.strings: list[tuple[str, cst.CSTNode]] = []
        self.attributes: dict[str, cst.Attribute] = {}
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
        self.bases += [base for base in node.bases if dotted_name(base.value) in self.names]

    def visit_Name(self, node: cst.Name) -> None:
        if node.value in self.names and id(node) not in self._callees:
            self.others.append(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self.attributes.setdefault(node.attr.value, node)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self.strings.append((node.value, node))

    def visit_FormattedStringText(self, node: cst.FormattedStringText) -> None:
        self.strings.append((node.value, node))


@functools.lru_cache(maxsize=4)
def _positions(module: cst.Module) -> Mapping[cst.CSTNode, CodeRange]:
    return MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)


def line_of(module: cst.Module, node: cst.CSTNode) -> int:
    """The line ``node`` of ``module`` starts on (computed only for a refusal: it is slow)."""
    return _positions(module)[node].start.line


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

FileRefusal = Callable[[U], "tuple[cst.CSTNode, str] | None"]
"""A translation's file check: the node at fault (for its line) and why, or None."""


def accepted(*_: object) -> None:
    """The file or call check of a translation that takes every use (its shim mirrors upstream)."""
    return None


@dataclass(frozen=True)
class Translation(Generic[U]):
    """The skeleton of one API translation's decision for a file: nothing to decide when it does
    not import ``api``; else the file is left alone for ``file_refusal(uses)`` or for the first
    call of the API that ``call_refusal(call, uses)`` refuses (named in the reason). ``uses``
    collects the file's uses (:class:`Uses`, or a subclass that gathers what a patch checks
    besides). Its methods are the patch module's ``relevant``, ``refusal`` and ``rewritten_imports``."""

    api: Api
    uses: type[U]
    file_refusal: FileRefusal
    call_refusal: Callable[[cst.Call, U], str | None]

    @property
    def apis(self) -> tuple[Api, ...]:
        return (self.api,)

    def relevant(self, source: str, context: object) -> bool:
        """Only a file spelling the API's name can need the patch."""
        return self.api.name in source

    def decide(self, module: cst.Module, package: str) -> tuple[U | None, Refused | None]:
        """The file's uses (None when it does not import the API) and where and why it is left
        alone (None: every use is translated)."""
        names = bound_names(module, package, self.api)
        if not names:
            return None, None
        uses = self.uses(names)
        module.visit(uses)
        found = self.file_refusal(uses)
        if found:
            return uses, Refused(line_of(module, found[0]), f"{self.api.name}: {found[1]}")
        for call in uses.calls:
            why = self.call_refusal(call, uses)
            if why:
                return uses, Refused(line_of(module, call), f"{code(call)}: {why}")
        return uses, None

    def refusal(self, source: str, package: str) -> Refused | None:
        """Where and why the file's uses of the API are left alone, or None when every one is
        translated (or the file does not import it)."""
        if self.api.name not in source:
            return None
        return self.decide(parsed(source), package)[1]

    def rewritten_imports(self, source: str, package: str) -> set[tuple[str, str]]:
        """The ``(module, name)`` imports of the API the patch rewrites away in ``source`` (step 4
        then plans no other fix for them)."""
        if self.api.name not in source:
            return set()
        uses, why = self.decide(parsed(source), package)
        return {(module, self.api.name) for module in self.api.modules} if uses is not None and why is None else set()


@dataclass(frozen=True)
class Translations:
    """Several translations one patch makes as one: a file is translated when it imports one of
    their APIs and none leaves it alone. The same methods as :class:`Translation`."""

    parts: tuple[Translation, ...]

    @property
    def apis(self) -> tuple[Api, ...]:
        return tuple(part.api for part in self.parts)

    def relevant(self, source: str, context: object) -> bool:
        return any(part.relevant(source, context) for part in self.parts)

    def refusal(self, source: str, package: str) -> Refused | None:
        return next((found for part in self.parts if (found := part.refusal(source, package))), None)

    def rewritten_imports(self, source: str, package: str) -> set[tuple[str, str]]:
        if self.refusal(source, package) is not None:
            return set()
        return {key for part in self.parts for key in part.rewritten_imports(source, package)}

    def translated(self, module: cst.Module, package: str) -> set[Api]:
        """The APIs the file imports, when every use of each is translated (else none)."""
        found: set[Api] = set()
        for part in self.parts:
            uses, why = part.decide(module, package)
            if why is not None:
                return set()
            if uses is not None:
                found.add(part.api)
        return found


class Translated:
    """Mixin of a translation's transformer: at the module, the file's uses of the API when it
    is translated (``uses``; None when it is left alone), and whether a call calls the API."""

    translation: ClassVar[Translation]
    context: PatchContext

    def visit_Module(self, node: cst.Module) -> None:
        uses, why = self.translation.decide(node, self.context.package)
        self.uses = uses if why is None else None
        self._on = self.uses is not None

    def calls_api(self, call: cst.Call) -> bool:
        return self.uses is not None and isinstance(call.func, cst.Name) and call.func.value in self.uses.names

    def imports_api(self, node: cst.ImportFrom) -> bool:
        """``node`` imports from a module of the API, in a translated file."""
        return self.uses is not None and import_module(node, self.context.package) in self.translation.api.modules


class ShimRedirect(ImportRedirectTransformer):
    """Transformer of a translation whose shim takes upstream's uses as written: in a translated
    file, the imports of its APIs point at the shim (``vllm_fl.compat.<shim>``), one count per
    statement. The shim itself, written with the migrated files, keeps its imports of the pin's
    API (a shim wrapping the pin's class of the same name would import itself)."""

    translation: ClassVar[Translation | Translations]
    shim: ClassVar[str]

    def visit_Module(self, node: cst.Module) -> None:
        group = self.translation if isinstance(self.translation, Translations) else Translations((self.translation,))
        is_shim = self.context.module == f"{COMPAT_PACKAGE}.{self.shim}"
        self._apis = set() if is_shim else group.translated(node, self.context.package)
        self._on = bool(self._apis)

    def locate(self, module: str, name: str) -> Location:
        if any(name == api.name and module in api.modules for api in self._apis):
            return f"{COMPAT_PACKAGE}.{self.shim}", name
        return module, name

    def module_of(self, node: cst.ImportFrom) -> str | None:
        module = import_module(node, self.context.package)
        return module if any(module in api.modules for api in self._apis) else None


RUNNER_LAYOUT = ("experts.routed_experts.", "experts.")
"""Where upstream's MoE runner holds the routed experts' parameters (``experts.routed_experts.w13_weight``)
and where the pin's ``FusedMoE`` (and the shim's layer on it) holds them (``experts.w13_weight``)."""
_ROUTED = re.compile(r"(?<![\w])routed_experts(?![\w])")


def flat_layout(text: str) -> str:
    """``text`` naming the pin's parameter layout where it names the runner's (:data:`RUNNER_LAYOUT`)."""
    return text.replace(*RUNNER_LAYOUT)


def runner_layout_refusal(uses: Uses) -> tuple[cst.CSTNode, str] | None:
    """The file checks of the fused-experts translations (P19, P20): the API used other than
    called, or a string naming upstream's ``routed_experts`` other than as the layout
    :func:`flat_layout` rewrites (a loader naming the runner by hand)."""
    if uses.others:
        return uses.others[0], "used other than called"
    found = next((node for value, node in uses.strings if _ROUTED.search(flat_layout(value))), None)
    if found is not None:
        return found, "a string names upstream's routed_experts other than as experts.routed_experts."
    return None


_String = TypeVar("_String", cst.SimpleString, cst.FormattedStringText)


class FlatLayoutStrings(cst.CSTTransformer):
    """Rewrites string literals naming upstream's runner layout to the pin's (one count each):
    a mixin of the translations whose layers hold their parameters as the pin's do."""

    count: int
    _on: bool
    """Whether the translation rewrites this file (set when it visits the module)."""

    def leave_SimpleString(self, original_node: cst.SimpleString, updated_node: cst.SimpleString) -> cst.SimpleString:
        return self._flat(updated_node)

    def leave_FormattedStringText(
        self, original_node: cst.FormattedStringText, updated_node: cst.FormattedStringText
    ) -> cst.FormattedStringText:
        return self._flat(updated_node)

    def _flat(self, node: _String) -> _String:
        flat = flat_layout(node.value)
        if not self._on or flat == node.value:
            return node
        self.count += 1
        return node.with_changes(value=flat)


@dataclass(frozen=True)
class ShimFunction:
    """What a shim's function accepts: positional parameters, keywords, and ``ACCEPTED``
    (argument -> the values with a pinned spelling; others raise in the shim)."""

    positional: tuple[str, ...]
    keywords: frozenset[str]
    accepted: Mapping[str, tuple[object, ...]]


@functools.cache
def shim_function(stem: str, function: str) -> ShimFunction:
    """The signature of ``function`` in the shim ``stem`` (a class: its constructor's, without
    ``self``) and the shim's ``ACCEPTED`` table, read from its source (a shim imports vLLM: it
    cannot be imported here)."""
    tree = ast.parse((SHIMS / f"{stem}.py").read_text(encoding="utf-8"))
    table: dict[str, tuple[object, ...]] = {}
    signature: tuple[tuple[str, ...], frozenset[str]] | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["ACCEPTED"]:
            table = ast.literal_eval(node.value)
        if isinstance(node, ast.FunctionDef) and node.name == function:
            signature = _signature(node.args)
        if isinstance(node, ast.ClassDef) and node.name == function:
            init = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
            names, keywords = _signature(init.args)
            signature = (names[1:], keywords - {names[0]})
    assert signature is not None, f"shims/{stem}.py defines {function}"
    return ShimFunction(signature[0], signature[1], table)


def _signature(args: ast.arguments) -> tuple[tuple[str, ...], frozenset[str]]:
    names = tuple(a.arg for a in [*args.posonlyargs, *args.args])
    return names, frozenset([*names, *(a.arg for a in args.kwonlyargs)])


def shim_call_refusal(shim: str, function: str, target: str) -> Callable[[cst.Call, Uses], str | None]:
    """A translation's call check against ``function`` of the shim ``shim``: the arguments it
    takes, literal values among those its ``ACCEPTED`` has a pinned spelling for (``target``: what
    of the pin the reason names, ``the pin's FusedMoE``)."""

    def refusal(call: cst.Call, uses: Uses) -> str | None:
        shim_signature = shim_function(shim, function)
        if has_star(call):
            return "*args/**kwargs cannot be checked"
        if len(positional(call)) > len(shim_signature.positional):
            return f"more than {len(shim_signature.positional)} positional arguments (the shim takes the others by keyword)"
        for name, arg in keywords(call).items():
            if name not in shim_signature.keywords:
                return f"{name}= has no spelling on {target}"
            value = literal(arg.value)
            accepted = shim_signature.accepted.get(name)
            if accepted is not None and value is not NOT_LITERAL and value not in accepted:
                allowed = " or ".join(repr(v) for v in accepted)
                return f"{name}={value!r} has no spelling on {target} (it takes {allowed})"
        return None

    return refusal


def api_gap(apis: Iterable[Api]) -> Callable[[Resolver], str | None]:
    """The patch's ``pin_gap(pinned)``: None when the pinned tree lacks one of ``apis``, else
    why the translation does not apply (step 4 also checks its shim's calls against the pin:
    :func:`pytest_flmigrate.autofix.planner.for_pin`)."""
    apis = tuple(apis)

    def pin_gap(pinned: Resolver) -> str | None:
        missing = [api for api in apis if all(pinned.resolve(module, api.name) is None for module in api.modules)]
        if not missing:
            return "the pin has " + ", ".join(f"{api.modules[0]}.{api.name}" for api in apis)
        return None

    return pin_gap
