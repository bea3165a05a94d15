"""Attributes the migrated code reads that the pinned side lacks: ``self.X`` provided upstream by
a base class, ``Class.X`` / ``module.X`` of pinned classes and modules, and fields of vLLM's
config objects (``vllm_config.cache_config.X``)."""

from __future__ import annotations

import ast
import difflib

from pytest_flmigrate.index import config_objects
from pytest_flmigrate.index.resolve import Member, Mro, Resolver
from pytest_flmigrate.patches import p25_env_flags
from pytest_flmigrate.review.base import FileView, Finding, ReviewContext, check, manual
from pytest_flmigrate.review.known_missing import KNOWN_MISSING
from pytest_flmigrate.review.names import ClassRef
from pytest_flmigrate.review.patch_ids import fix_for
from pytest_flmigrate.review.types import target_of

CHECK = "missing-attributes"


def _written_attributes(view: FileView) -> set[str]:
    """Attributes the file assigns on any object (``x.attr = ...``): not reported as missing."""
    cached = view.__dict__.get("_written")
    if cached is None:
        cached = {node.attr for node in view.nodes(ast.Attribute) if isinstance(node.ctx, (ast.Store, ast.Del))}
        cached |= {
            node.args[1].value
            for node in view.nodes(ast.Call)
            if isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        }
        view.__dict__["_written"] = cached
    return cached


def _mro_names(mro: Mro) -> str:
    names = [entry.rpartition(".")[2] if isinstance(entry, str) else entry[1].name for entry in mro.entries]
    return " -> ".join(names[:6]) + (" -> ..." if len(names) > 6 else "")


def _nearest(resolver: Resolver, ref: ClassRef, name: str) -> list[str]:
    members = resolver.members(ref.module, ref.name) if ref.name else resolver.exports(ref.module)
    return difflib.get_close_matches(name, sorted(m for m in members if not m.startswith("__")), n=3, cutoff=0.7)


def upstream_member(context: ReviewContext, module: str | None, class_name: str, name: str):
    """The member upstream's version of ``module.class_name`` has (None when unknown/absent)."""
    upstream = context.upstream
    if upstream is None or module is None:
        return None
    upstream_module = upstream.module(module)
    if upstream_module is None or class_name not in upstream_module.classes:
        located = upstream.locate(class_name, "vllm")
        if not located or located[0].kind != "class":
            return None
        module = located[0].module
    member = upstream.find_member(module, class_name, name)
    return member if member is not None and member.kind not in ("unknown",) else None


@check(CHECK)
def missing_attributes(context: ReviewContext, view: FileView) -> list[Finding]:
    """attributes read from pinned base classes, pinned classes/modules or config objects that the pin lacks"""
    findings: dict[tuple[int, str], Finding] = {}
    written = _written_attributes(view)
    config_classes = config_object_classes(context)
    for node in view.nodes(ast.Attribute):
        if not isinstance(node.ctx, ast.Load) or node.attr in KNOWN_MISSING or node.attr.startswith("__"):
            continue
        config = _config_class_of(node.value, config_classes)
        if config is not None:
            finding = _config_finding(context, view, node, config, written)
        else:
            finding = _member_finding(context, view, node, written)
        if finding is not None:
            findings.setdefault((finding.line, finding.symbol), finding)
    return sorted(findings.values(), key=lambda f: (f.line, f.symbol))


def _member_finding(context: ReviewContext, view: FileView, node: ast.Attribute, written: set[str]) -> Finding | None:
    target = target_of(view, node)
    if target is None or target.on_class is None or target.member is not None:
        return None
    resolver = context.resolver
    ref = target.on_class
    name = node.attr
    if not ref.name:  # a module attribute
        if not context.is_pinned(ref.module):
            return None
        message = _gap(f"module {ref.module} of the pin has no {name}", None, _nearest(resolver, ref, name))
        suggestion = f"use what {ref.module} provides or port {name}"
        fix = (
            fix_for(context, p25_env_flags.NAME, suggestion, ref.module, name)
            if ref.module == p25_env_flags.ENVS
            else manual(suggestion)
        )
        return view.finding(CHECK, node, f"{ref.module}.{name}", message, fix)
    mro = target.mro or resolver.mro(ref.module, ref.name)
    if resolver.has_dynamic_getattr(mro) or name in written or resolver.sets_attributes_dynamically(mro):
        return None
    pinned_bases = [entry for entry in mro.classes if context.is_pinned(entry[0])]
    if not pinned_bases:
        return None  # only the file's own classes: upstream code, consistent by construction
    near = _nearest(resolver, ref, name)
    if target.typed:
        symbol = ast.unparse(node)
    else:
        symbol = f"{ref.name}.{name}" if not target.via_instance else f"self.{name}"
    own = view.file.upstream_module if ref.module == view.module else ref.module
    theirs = upstream_member(context, own, ref.name, name)
    if theirs is None and context.upstream is not None:
        # the class is not upstream as such: ask upstream's versions of its pinned bases
        for base_module, base in pinned_bases:
            theirs = upstream_member(context, base_module, base.name, name)
            if theirs is not None:
                break
    if target.via_instance and context.upstream is not None and theirs is None:
        return None  # upstream lacks it too: not a migration gap (set dynamically, or a latent bug)
    message = _gap(f"no {name} on {ref.name} in the pin (MRO {_mro_names(mro)})", theirs, near)
    return view.finding(
        CHECK, node, symbol, message, manual(f"set {name} in __init__ or port what upstream's base does with it")
    )


def _gap(message: str, theirs: Member | None, near: list[str]) -> str:
    """``message`` (what the pin lacks), then the upstream class that has it and the pin's nearest names."""
    if theirs is not None:
        message += f"; upstream {theirs.owner} provides it ({theirs.kind})"
    if near:
        message += f"; nearest: {', '.join(near)}"
    return message


def config_object_classes(context: ReviewContext) -> dict[str, tuple[str, str]]:
    """Attribute/variable names of vLLM config objects -> (module, class) in the pin
    (:func:`pytest_flmigrate.index.config_objects.config_object_classes`), once per review."""
    cached = context.__dict__.get("_config_classes")
    if cached is None:
        cached = context.__dict__["_config_classes"] = config_objects.config_object_classes(context.resolver)
    return cached


def _config_class_of(node: ast.expr, classes: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    if isinstance(node, ast.Name):
        return classes.get(node.id)
    if isinstance(node, ast.Attribute):
        return classes.get(node.attr)
    return None


def _config_finding(context, view, node: ast.Attribute, config: tuple[str, str], written: set[str]) -> Finding | None:
    module, class_name = config
    resolver = context.resolver
    mro = resolver.mro(module, class_name)
    if resolver.find_member(module, class_name, node.attr, mro) is not None or resolver.has_dynamic_getattr(mro):
        return None
    theirs = upstream_member(context, module, class_name, node.attr)
    if context.upstream is not None and theirs is None:
        return None
    message = _gap(
        f"the pin's {class_name} has no {node.attr}",
        theirs,
        _nearest(resolver, ClassRef(module, class_name), node.attr),
    )
    return view.finding(
        CHECK,
        node,
        f"{class_name}.{node.attr}",
        message,
        manual(f"use the pin's equivalent of {class_name}.{node.attr} or drop the feature"),
    )
