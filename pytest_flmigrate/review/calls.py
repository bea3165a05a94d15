"""Calls whose keyword names or positional count the pinned callee does not accept: functions,
constructors (dataclass ones included), classmethods, staticmethods, methods reached through
``self``, ``super()`` or an inherited base."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from pytest_flmigrate.index.records import KEYWORD_ONLY, POSITIONAL_OR_KEYWORD, VAR_KEYWORD, FunctionInfo
from pytest_flmigrate.index.resolve import Resolver, Symbol
from pytest_flmigrate.patches import p17_call_arguments, p21_stacked_weights
from pytest_flmigrate.review.base import FileView, Finding, ReviewContext, check
from pytest_flmigrate.review.known_missing import KNOWN_MISSING
from pytest_flmigrate.review.names import call_shape
from pytest_flmigrate.review.patch_ids import fix_for
from pytest_flmigrate.review.types import target_of

CHECK = "call-signatures"
STACKED_MAPPER = f"{p21_stacked_weights.UTILS}.{p21_stacked_weights.MAPPER.name}.__init__"
"""The pin's ``WeightsMapper``: called with upstream's ``orig_to_new_stacked`` alone, P21 fixes it."""


@dataclass(frozen=True)
class Callee:
    """A callable the pin defines, as a call site reaches it."""

    label: str  # as it reads in messages: ``WeightsMapper``, ``MambaStateDtypeCalculator.x``
    owner_module: str  # module of the defining class/function
    owner_class: str | None
    name: str  # function or method name (``__init__`` for constructors)
    function: FunctionInfo
    bound: bool  # first parameter supplied by the call (methods through instances, classmethods, constructors)

    @property
    def qualname(self) -> str:
        owner = f"{self.owner_module}.{self.owner_class}" if self.owner_class else self.owner_module
        return f"{owner}.{self.name}"


def callee_of(view: FileView, call: ast.Call) -> Callee | None:
    """The function a call runs, when the index knows it (constructors included)."""
    resolver = view.resolver
    target = target_of(view, call.func)
    if target is None:
        return None
    label = ast.unparse(call.func)
    if target.symbol is not None:
        symbol = target.symbol
        if symbol.kind == "function":
            function = resolver.function_of(symbol)
            if function is None or _signature_opaque(function):
                return None
            return Callee(label, symbol.module, None, symbol.name, function, False)
        if symbol.kind == "class":
            return _constructor(view, symbol.module, symbol.name, label)
        return None
    member = target.member
    if member is None or member.function is None:
        return None
    function = member.function
    if _signature_opaque(function) or member.kind == "property":
        return None
    if member.kind == "staticmethod":
        bound = False
    elif member.kind == "classmethod":
        bound = True
    else:
        bound = target.via_instance
    return Callee(label, member.owner_module, member.owner, member.name, function, bound)


def _constructor(view: FileView, module: str, name: str, label: str) -> Callee | None:
    member, _ = view.resolver.constructor(module, name)
    if member is None or member.function is None or _signature_opaque(member.function):
        return None
    return Callee(label, member.owner_module, member.owner, "__init__", member.function, True)


def _signature_opaque(function: FunctionInfo) -> bool:
    """Decorators that may change what a function accepts."""
    return any(d in ("overload", "wraps", "singledispatch", "singledispatchmethod") for d in function.decorators)


def upstream_signature(context: ReviewContext, callee: Callee) -> FunctionInfo | None:
    """The same callee in the upstream trees, when they are known and define it."""
    upstream = context.upstream
    if upstream is None:
        return None
    if callee.owner_class:
        symbol = _find(upstream, callee.owner_module, callee.owner_class)
        if symbol is None or symbol.kind != "class":
            return None
        if callee.name == "__init__":
            member, _ = upstream.constructor(symbol.module, symbol.name)
        else:
            member = upstream.find_member(symbol.module, symbol.name, callee.name)
        return member.function if member is not None else None
    return upstream.function_of(_find(upstream, callee.owner_module, callee.name))


def _find(upstream: Resolver, module: str, name: str) -> Symbol | None:
    """``module.name`` upstream, else where upstream defines ``name`` under the same package."""
    symbol = upstream.resolve(module, name)
    if symbol is None:
        located = upstream.locate(name, module.split(".")[0])
        symbol = located[0] if located else None
    return symbol


def pinned_calls(
    view: FileView, is_pinned: Callable[[str], bool], calls: Iterable[ast.Call] | None = None
) -> Iterator[tuple[ast.Call, Callee]]:
    """The file's calls (or those of ``calls``) whose callee the indexes know and define in a
    module ``is_pinned`` accepts, with that callee: what this check looks at, and step 4's
    signature drift (:mod:`pytest_flmigrate.autofix.drift`)."""
    for call in view.nodes(ast.Call) if calls is None else calls:
        callee = callee_of(view, call)
        if callee is not None and is_pinned(callee.owner_module):
            yield call, callee


def rejected_keywords(function: FunctionInfo, keywords: list[str], *, bound: bool) -> list[str]:
    """The ``keywords`` that ``function`` neither names nor takes through ``**kwargs``."""
    params = function.bound_params(bound)
    if any(p.kind == VAR_KEYWORD for p in params):
        return []
    named = {p.name for p in params if p.kind in (POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)}
    return [k for k in keywords if k not in named]


@check(CHECK)
def call_signatures(context: ReviewContext, view: FileView) -> list[Finding]:
    """calls the pinned callee does not accept (unknown keywords, too many positionals, missing arguments)"""
    findings = []
    for call, callee in pinned_calls(view, context.is_pinned):
        if callee.name in KNOWN_MISSING:
            continue  # known-missing-apis reports it with its patch
        positional, keywords, star_args, star_kwargs = call_shape(call)
        problems = callee.function.check_call(
            positional, keywords, bound=callee.bound, star_args=star_args, star_kwargs=star_kwargs
        )
        if not problems:
            continue
        pinned = f"pinned {callee.qualname}{callee.function.signature(bound=callee.bound)}"
        upstream = upstream_signature(context, callee)
        message = f"{'; '.join(problems)}; {pinned}"
        if upstream is not None:
            message += f"; upstream {upstream.signature(bound=callee.bound)}"
        owner = f"{callee.owner_module}.{callee.owner_class}" if callee.owner_class else callee.owner_module
        unfixed = context.unfixed.get((owner, callee.name))
        if unfixed:  # step 4 found the signature drift and could not fix it: why
            message += f"; not fixed at step 4: {unfixed}"
        unknown = rejected_keywords(callee.function, keywords, bound=callee.bound)
        if callee.qualname == STACKED_MAPPER and set(unknown) == {p21_stacked_weights.FIELD}:
            fix = fix_for(context, p21_stacked_weights.NAME, _suggestion(callee, unknown))
        else:
            fix = fix_for(
                context, p17_call_arguments.NAME, _suggestion(callee, unknown), callee.qualname, ",".join(unknown)
            )
        findings.append(view.finding(CHECK, call, callee.label, message, fix))
    return findings


def _suggestion(callee: Callee, unknown: list[str]) -> str:
    if unknown:
        return (
            f"adapt the call to the pinned {callee.name} (it has no {', '.join(unknown)}; dropping one "
            "changes behaviour unless it is the default), or port the upstream callee"
        )
    return "adapt the call to the pinned signature, or port the upstream callee"
