"""Signature drift: calls into a class or function the pin has whose pinned signature does not take them as upstream's does.

A migrated file that constructs or subclasses a class the pin also defines calls it the way
upstream's newer version is called: ``super().__init__(..., attn_layer_type=MistralAttention)``
into ``LlamaDecoderLayer``, ``super().forward(..., t_cond=t_cond)`` into ``LlamaModel``; a function
the pin has is called with upstream's new signature: ``async_tensor_h2d(idx, device=device)``. The
import resolves, so no import check notices; the pinned vLLM fails at run time (``unexpected
keyword argument``). :func:`drifts` finds those calls statically, from the upstream text of the
file and both trees' indexes: direct calls of an imported class or function, and
``super().m(...)`` in a method of a class whose base is imported. What such a call reaches in the pin and which of its
keywords that rejects come from step 6's call-signatures check (``review/calls.py``), which reads
the file here as it reads a migrated one (:func:`source_view`). Step 4 (:mod:`pytest_flmigrate.autofix.planner`) then
backports upstream's class or function (P16) or drops a forwarded default (P23), or says why
neither is sound.

:func:`rejected_calls` checks code written for the pin (a backported copy, a translation's shim)
the same way, against the pin alone: every import of the pin resolves, no class derives from what
the pin has as a function, and every call into the pin fits the pinned signature (what step 6's
call-signatures check would say of it).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate.index.file_imports import imports_of
from pytest_flmigrate.index.records import KEYWORD_ONLY, POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, FunctionInfo
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.index.symbols import module_info, parse_source
from pytest_flmigrate.review.base import SourceView
from pytest_flmigrate.review.calls import Callee, pinned_calls, rejected_keywords
from pytest_flmigrate.review.names import call_shape


@dataclass(frozen=True)
class Drift:
    """One call whose pinned callee rejects keywords that upstream's accepts.

    imported:  the (module, name) the file imports the class or function under (what a backport
               redirects)
    owner:     ``module.Class`` of the pinned class defining the member the call reaches, or
               ``module.function`` of a pinned function
    member:    ``__init__`` for a constructor, ``""`` for a function, else the method name
    keywords:  the keywords the pinned member rejects (for a function, maybe none: the pin's
               requires an argument upstream's does not, or reads a positional one differently)
    named:     upstream's member names every one of them (else it takes them through ``**kwargs``)
    enclosing: (class, method) of a ``super()`` call, None for a direct constructor call
    forwarded: each keyword is passed as ``k=k``, ``k`` a parameter of the enclosing method
               defaulting to None
    """

    line: int
    imported: tuple[str, str]
    owner: str
    member: str
    keywords: tuple[str, ...]
    named: bool
    enclosing: tuple[str, str] | None = None
    forwarded: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """Where step 6 finds why the drift was left (``MigrationPlan.unfixed``): ``("module.Class",
        member)`` for a class, ``(module, function)`` for a function."""
        if self.member:
            return (self.owner, self.member)
        module, _, function = self.owner.rpartition(".")
        return (module, function)

    @property
    def label(self) -> str:
        callee = f"{self.owner}.{self.member}" if self.member else self.owner
        return f"{callee}({', '.join(f'{k}=' for k in self.keywords)})"


def drifts(
    source: str | ast.Module,
    module: str,
    is_package: bool,
    pinned: Resolver,
    upstream: Resolver,
    extra: dict[str, tuple[str, str]] | None = None,
    within: frozenset[str] | None = None,
) -> list[Drift]:
    """The drifting calls of a file (``module`` upstream).

    ``extra``: more local names bound to pinned (module, name) (a compat copy importing
    same-module definitions from the pin). ``within``: only calls inside these top-level
    definitions.
    """
    tree = parse_source(source) if not isinstance(source, ast.Module) else source
    if tree is None:
        return []
    bound = {
        ref.bound: (ref.module, ref.name)
        for ref in imports_of(tree, module, is_package)
        if ref.name not in (None, "*") and not ref.nested and not ref.type_checking
    }
    bound.update(extra or {})
    view = source_view(tree, module, is_package, pinned, extra or {})
    candidates: dict[ast.Call, tuple[ast.stmt, list[tuple[str, str]]]] = {}
    for top in tree.body:
        if within is not None and getattr(top, "name", None) not in within:
            continue
        bases = _imported_bases(top, bound) if isinstance(top, ast.ClassDef) else []
        for call in (node for node in ast.walk(top) if isinstance(node, ast.Call)):
            if _shape(call, top, bases, bound) is not None:
                candidates[call] = (top, bases)
    found: list[Drift] = []
    for call, callee in pinned_calls(view, lambda owner: owner != view.module, candidates):
        drift = _drift(call, callee, *candidates[call], bound, upstream)
        if drift is not None:
            found.append(drift)
    return found


def rejected_calls(
    source: str | ast.Module,
    module: str,
    pinned: Resolver,
    extra: dict[str, tuple[str, str]] | None = None,
    within: frozenset[str] | None = None,
) -> list[str]:
    """What of ``source`` (``module``) the pinned tree rejects, one ``line N: ...`` each: imports
    of the pin's packages that do not resolve, classes derived from what the pin has as a
    function, and calls into the pin whose arguments the pinned signature does not take
    (``extra``, ``within``: as for :func:`drifts`; a copy's own imports are its closure's to check)."""
    tree = parse_source(source) if not isinstance(source, ast.Module) else source
    if tree is None:
        return []
    refs = [r for r in imports_of(tree, module, False) if r.name not in (None, "*") and not r.type_checking]
    problems = [
        f"line {ref.line}: imports {ref.module}.{ref.name}, which the pin lacks"
        for ref in refs
        if within is None and pinned.covers(ref.module) and pinned.resolve(ref.module, ref.name or "") is None
    ]
    bound = {ref.bound: (ref.module, ref.name or "") for ref in refs if not ref.nested}
    bound.update(extra or {})
    view = source_view(tree, module, False, pinned, extra or {})
    calls: list[ast.Call] = []
    for top in tree.body:
        if within is not None and getattr(top, "name", None) not in within:
            continue
        for base in _imported_bases(top, bound) if isinstance(top, ast.ClassDef) else []:
            symbol = pinned.resolve(*base)
            if symbol is not None and symbol.kind == "function":
                problems.append(
                    f"line {top.lineno}: {symbol.qualname} is a function at the pin, not a class to derive from"
                )
        calls += [node for node in ast.walk(top) if isinstance(node, ast.Call)]
    for call, callee in pinned_calls(view, lambda owner: owner != view.module, calls):
        positional, keywords, star_args, star_kwargs = call_shape(call)
        found = callee.function.check_call(
            positional, keywords, bound=callee.bound, star_args=star_args, star_kwargs=star_kwargs
        )
        if found:
            problems.append(f"line {call.lineno}: {callee.qualname}: {'; '.join(found)}")
    return sorted(problems, key=lambda problem: int(problem.split(":")[0].removeprefix("line ")))


#: The name a file read by :func:`source_view` has in its resolver (beside its own module, so
#: that its relative imports resolve as the file's, and apart from it, so that the pin's module
#: of the same name stays the pin's).
SOURCE_MODULE = "__flmigrate_source__"


def source_view(
    tree: ast.Module, module: str, is_package: bool, pinned: Resolver, extra: dict[str, tuple[str, str]]
) -> SourceView:
    """The file ``module`` upstream as step 6's call-signatures check reads a migrated file, its
    names resolved in the pin (``extra``: names it imports from the pin in place of its own)."""
    package = module if is_package else module.rpartition(".")[0]
    name = f"{package}.{SOURCE_MODULE}"
    info = module_info(Path(f"{SOURCE_MODULE}.py"), tree, False, name)
    for local, (owner, original) in extra.items():
        for table in (info.defines, info.classes, info.functions):
            table.pop(local, None)
        info.imports[local] = f"{owner}:{original}"
    return SourceView(pinned.overlaid(name, info, tree), name, tree)


def _imported_bases(cls: ast.ClassDef, bound: dict[str, tuple[str, str]]) -> list[tuple[str, str]]:
    return [bound[base.id] for base in cls.bases if isinstance(base, ast.Name) and base.id in bound]


CALLED = "()"
"""The member :func:`_shape` gives a call of the imported name itself: a class's constructor or a
function, which the callee tells apart."""


def _shape(call: ast.Call, top: ast.stmt, bases, bound) -> tuple[tuple[str, str], str] | None:
    """(the import it goes through, the member) of a call that may drift: a call of an imported
    class or function (:data:`CALLED`), or ``super().m(...)`` passing keywords in a method of a
    class with an imported base."""
    func = call.func
    if isinstance(func, ast.Name) and func.id in bound:
        return bound[func.id], CALLED
    if not any(k.arg is not None for k in call.keywords):
        return None
    if isinstance(func, ast.Attribute) and _is_super(func) and isinstance(top, ast.ClassDef) and bases:
        if _method_of(top, call) is not None:
            return bases[0], func.attr
    return None


def _drift(call: ast.Call, callee: Callee, top: ast.stmt, bases, bound, upstream: Resolver) -> Drift | None:
    shape = _shape(call, top, bases, bound)
    if shape is None:
        return None
    imported, member = shape
    if member == CALLED and callee.owner_class is None:
        return _function_drift(call, callee, imported, upstream)
    member = "__init__" if member == CALLED else member
    if callee.owner_class is None or not callee.bound or callee.name != member:
        return None
    keywords = [k.arg for k in call.keywords if k.arg is not None]
    rejected = tuple(rejected_keywords(callee.function, keywords, bound=True))
    if not rejected:
        return None
    theirs = _member(upstream, imported, member)
    if theirs is None or rejected_keywords(theirs[1], list(rejected), bound=True):
        return None
    named = all(_names(theirs[1], k) for k in rejected)
    enclosing = None
    forwarded = False
    if isinstance(top, ast.ClassDef) and not isinstance(call.func, ast.Name):
        method = _method_of(top, call)
        assert method is not None, "the shape holds a method"
        enclosing = (top.name, method.name)
        forwarded = all(_forwards_none(top, call, k) for k in rejected)
    owner = f"{callee.owner_module}.{callee.owner_class}"
    return Drift(call.lineno, imported, owner, member, rejected, named, enclosing, forwarded)


def _function_drift(call: ast.Call, callee: Callee, imported: tuple[str, str], upstream: Resolver) -> Drift | None:
    """A call of an imported function that the pin's signature rejects (a keyword it lacks, an
    argument it requires) or reads differently (a positional argument landing in another
    parameter), and upstream's accepts: ``async_tensor_h2d(x, device=d)``."""
    theirs = upstream.function_of(upstream.resolve(*imported))
    if theirs is None:
        return None
    positional, keywords, star_args, star_kwargs = call_shape(call)
    shape = {"star_args": star_args, "star_kwargs": star_kwargs}
    if theirs.check_call(positional, keywords, **shape):
        return None  # upstream's does not take it either: not a drift
    ours = callee.function
    if not ours.check_call(positional, keywords, **shape) and _same_positions(ours, theirs, positional):
        return None
    rejected = tuple(rejected_keywords(ours, keywords, bound=False))
    named = not rejected_keywords(theirs, list(rejected), bound=False) and all(
        any(p.name == k and p.kind in (POSITIONAL_OR_KEYWORD, KEYWORD_ONLY) for p in theirs.params) for k in rejected
    )
    return Drift(call.lineno, imported, f"{callee.owner_module}.{callee.name}", "", rejected, named)


def _same_positions(ours: FunctionInfo, theirs: FunctionInfo, positional: int) -> bool:
    """Whether the first ``positional`` arguments land in parameters of the same names in both
    signatures (``_support_torch_compile(cls, dims, unbacked, enable_if, is_encoder)``: upstream's
    5th parameter is ``is_encoder``, the pin's ``shape_invariants``)."""
    kinds = (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)
    mine = [p.name for p in ours.params if p.kind in kinds][:positional]
    upstream = [p.name for p in theirs.params if p.kind in kinds][:positional]
    return mine == upstream


def _is_super(func: ast.Attribute) -> bool:
    return isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name) and func.value.func.id == "super"


def _method_of(cls: ast.ClassDef, node: ast.AST) -> ast.FunctionDef | None:
    for statement in cls.body:
        if isinstance(statement, ast.FunctionDef) and any(child is node for child in ast.walk(statement)):
            return statement
    return None


def _member(resolver: Resolver, imported: tuple[str, str], member: str) -> tuple[str, FunctionInfo] | None:
    """(``module.Class`` defining it, its function) for ``member`` of the imported class (upstream's:
    the pin's is the call's callee)."""
    symbol = resolver.resolve(*imported)
    if symbol is None or symbol.kind != "class":
        return None
    if member == "__init__":
        found, _ = resolver.constructor(symbol.module, symbol.name)
    else:
        found = resolver.find_member(symbol.module, symbol.name, member)
    if found is None or found.function is None or found.kind in ("property", "staticmethod"):
        return None
    return f"{found.owner_module}.{found.owner}", found.function


def _names(function: FunctionInfo, keyword: str) -> bool:
    return any(p.name == keyword and p.kind in (POSITIONAL_OR_KEYWORD, KEYWORD_ONLY) for p in function.params[1:])


def _forwards_none(cls: ast.ClassDef, call: ast.Call, keyword: str) -> bool:
    """``keyword=keyword`` where ``keyword`` is a parameter of the enclosing method defaulting to None."""
    method = _method_of(cls, call)
    value = next(k.value for k in call.keywords if k.arg == keyword)
    if method is None or not (isinstance(value, ast.Name) and value.id == keyword):
        return False
    return _defaults_to_none(method, keyword)


def _defaults_to_none(function: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    defaults: dict[str, ast.expr | None] = dict(
        zip([a.arg for a in positional[len(positional) - len(args.defaults) :]], args.defaults, strict=True)
    )
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)})
    default = defaults.get(name)
    return isinstance(default, ast.Constant) and default.value is None


def receivers_default_to_none(source: str | ast.Module, keyword: str) -> bool:
    """Every function of the file taking ``keyword`` defaults it to None, and no call passes it
    other than by forwarding such a parameter (``keyword=keyword``): where the pin never supplies
    it, its value is None everywhere in the file, and dropping it changes nothing."""
    tree = parse_source(source) if not isinstance(source, ast.Module) else source
    if tree is None:
        return False
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
            if keyword in names and not _defaults_to_none(node, keyword):
                return False
        elif isinstance(node, ast.Call):
            for passed in node.keywords:
                if passed.arg == keyword and not (isinstance(passed.value, ast.Name) and passed.value.id == keyword):
                    return False
    return True
