"""Overrides of hooks the pinned base class never calls: upstream's base calls ``name`` on
``self``, the migrated class overrides it, and the pin's base has no ``name``, so the override is
dead code in the pin (``get_default_tok_params`` of a ``BaseProcessingInfo``). The finding names
the hooks the pin's bases do call that are closest to it, where the override's work belongs."""

from __future__ import annotations

import ast
import difflib

from pytest_flmigrate.patches.translation import COMPAT_PACKAGE, SHIMS
from pytest_flmigrate.review.attributes import upstream_member
from pytest_flmigrate.review.base import MODEL_ROLES, FileView, Finding, ReviewContext, check, manual

CHECK = "uncalled-hooks"
PORTS = frozenset(f"{COMPAT_PACKAGE}.{path.stem}" for path in SHIMS.glob("*.py"))
"""The ports step 4 writes from ``autofix/shims/`` (P18-P21, P26, P28, P32, P33): their methods are the API
the migrated files call, upstream's, not overrides of hooks the pin's base would call."""


@check(CHECK, roles=MODEL_ROLES)
def uncalled_hooks(context: ReviewContext, view: FileView) -> list[Finding]:
    """overrides of methods upstream's base class calls that the pinned base class lacks (the pin never calls them)"""
    if context.upstream is None or view.module in PORTS:
        return []
    resolver = context.resolver
    findings = []
    for node in view.top_classes():
        mro = resolver.mro(view.module, node.name)
        bases = [(module, cls) for module, cls in mro.classes[1:] if context.is_pinned(module)]
        if not bases:
            continue
        inherited = mro.after(view.module, node.name)
        for method in node.body:
            if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)) or method.name.startswith("__"):
                continue
            name = method.name
            if resolver.find_member(view.module, node.name, name, inherited) is not None:
                continue
            if _used_in_file(view, method) or name in _read_elsewhere(context, view):
                continue
            for module, base in bases:
                theirs = upstream_member(context, module, base.name, name)
                if theirs is None or theirs.function is None:
                    continue
                near = _pinned_hooks_near(bases, name)
                message = (
                    f"overrides upstream's {theirs.owner}.{name}; the pin's {base.name} has no {name}, "
                    "so nothing in the pin calls it"
                )
                if near:
                    message += f"; the pin calls {', '.join(near)} instead"
                findings.append(
                    view.finding(
                        CHECK,
                        method,
                        f"{node.name}.{name}",
                        message,
                        manual(
                            f"move what {name} does into {near[0] if near else 'the hooks the pin calls'}, or port upstream's caller"
                        ),
                    )
                )
                break
    return findings


def _used_in_file(view: FileView, method: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether the file reads ``.name`` outside the method itself (it calls its own override)."""
    inside = {id(node) for node in ast.walk(method)}
    return any(
        node.attr == method.name and isinstance(node.ctx, ast.Load) and id(node) not in inside
        for node in view.nodes(ast.Attribute)
    )


def _read_elsewhere(context: ReviewContext, view: FileView) -> frozenset[str]:
    """Attribute names the migration's other files read: a method they call (a compat port's,
    ``MMEncoderAttention.compute_max_seqlen``) is not a hook the pin should call."""
    key = f"_read_outside_{view.target}"
    cached = context.__dict__.get(key)
    if cached is None:
        names: set[str] = set()
        for file in context.files:
            if file.target == view.target:
                continue
            other = context.view(file)
            names |= {node.attr for node in other.nodes(ast.Attribute) if isinstance(node.ctx, ast.Load)}
        cached = context.__dict__[key] = frozenset(names)
    return cached


def _pinned_hooks_near(bases, name: str) -> list[str]:
    """Methods of the pinned bases that those bases call on ``self``, closest to ``name``."""
    called = {read for _, cls in bases for method in cls.methods.values() for read in method.self_reads}
    hooks = sorted(
        {method for _, cls in bases for method in cls.methods if method in called and not method.startswith("__")}
    )
    return difflib.get_close_matches(name, hooks, n=2, cutoff=0.5)
