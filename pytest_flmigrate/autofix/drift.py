"""Signature drift: calls into a class the pin has whose pinned signature lacks keywords upstream's takes.

A migrated file that constructs or subclasses a class the pin also defines calls it the way
upstream's newer version is called: ``super().__init__(..., attn_layer_type=MistralAttention)``
into ``LlamaDecoderLayer``, ``super().forward(..., t_cond=t_cond)`` into ``LlamaModel``. The import
resolves, so no import check notices; the pinned vLLM fails at run time (``unexpected keyword
argument``). :func:`drifts` finds those calls statically, from the upstream text of the file and
both trees' indexes: direct constructor calls of an imported class, and ``super().m(...)`` in a
method of a class whose base is imported. What such a call reaches in the pin and which of its
keywords that rejects come from step 6's call-signatures check (``review/calls.py``), which reads
the file here as it reads a migrated one (:func:`source_view`). Step 4 (:mod:`pytest_flmigrate.autofix.planner`) then
backports upstream's class (P16) or drops a forwarded default (P23), or says why neither is sound.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate.index.file_imports import imports_of
from pytest_flmigrate.index.records import KEYWORD_ONLY, POSITIONAL_OR_KEYWORD, FunctionInfo
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.index.symbols import module_info, parse_source
from pytest_flmigrate.review.base import SourceView
from pytest_flmigrate.review.calls import Callee, pinned_calls, rejected_keywords


@dataclass(frozen=True)
class Drift:
    """One call whose pinned callee rejects keywords that upstream's accepts.

    imported:  the (module, name) the file imports the class under (what a backport redirects)
    owner:     ``module.Class`` of the pinned class defining the member the call reaches
    member:    ``__init__`` for a constructor, else the method name
    keywords:  the keywords the pinned member rejects
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
    def label(self) -> str:
        return f"{self.owner}.{self.member}({', '.join(f'{k}=' for k in self.keywords)})"


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


def _shape(call: ast.Call, top: ast.stmt, bases, bound) -> tuple[tuple[str, str], str] | None:
    """(the import it goes through, the member) of a call that may drift: a constructor call of
    an imported class, or ``super().m(...)`` in a method of a class with an imported base; each
    passing keywords."""
    if not any(k.arg is not None for k in call.keywords):
        return None
    func = call.func
    if isinstance(func, ast.Name) and func.id in bound:
        return bound[func.id], "__init__"
    if isinstance(func, ast.Attribute) and _is_super(func) and isinstance(top, ast.ClassDef) and bases:
        if _method_of(top, call) is not None:
            return bases[0], func.attr
    return None


def _drift(call: ast.Call, callee: Callee, top: ast.stmt, bases, bound, upstream: Resolver) -> Drift | None:
    shape = _shape(call, top, bases, bound)
    if shape is None or callee.owner_class is None or not callee.bound or callee.name != shape[1]:
        return None
    imported, member = shape
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
