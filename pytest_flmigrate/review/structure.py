"""The catalog's judgement patches as checks: P8 (merged projections whose parts differ in size
built with ColumnParallelLinear), P11 (custom ops imported through another module path than the
parent module's), P12 (an ``__init__`` that skips a parent's ``__init__`` while inherited
methods still use the attributes only that ``__init__`` sets)."""

from __future__ import annotations

import ast

from pytest_flmigrate.index.records import ClassInfo
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.review.base import MODEL_ROLES, FileView, Finding, ReviewContext, check, manual
from pytest_flmigrate.review.config_bridge import class_node
from pytest_flmigrate.review.names import resolve_name

COLUMN_PARALLEL = "ColumnParallelLinear"


# --------------------------------------------------------------------------- P8


def _terms(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _terms(node.left) + _terms(node.right)
    return [node]


def _part(term: ast.expr) -> str:
    """A term without constant factors: ``self.key_dim * 2`` -> ``self.key_dim``."""
    if isinstance(term, ast.BinOp) and isinstance(term.op, ast.Mult):
        if isinstance(term.left, ast.Constant):
            return _part(term.right)
        if isinstance(term.right, ast.Constant):
            return _part(term.left)
    return ast.unparse(term)


def merged_parts(call: ast.Call) -> list[str] | None:
    """The distinct parts of a ``ColumnParallelLinear(...)`` output size that sums parts of
    different sizes (``key_dim * 2 + value_dim * 2`` -> [key_dim, value_dim]), else None."""
    size = (
        call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "output_size"), None)
    )
    if size is None:
        return None
    terms = _terms(size)
    parts = list(dict.fromkeys(_part(term) for term in terms))
    if len(terms) < 2 or len(parts) < 2:
        return None
    return parts


def _is_column_parallel(view: FileView | None, call: ast.Call, resolver: Resolver | None = None) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name != COLUMN_PARALLEL:
        return False
    if view is not None and isinstance(func, ast.Name):
        symbol = resolve_name(view, func.id, call)
        return symbol is None or symbol.name == COLUMN_PARALLEL
    return True


def _assigned_to(node: ast.AST, parents: dict) -> str:
    parent = parents.get(node)
    if isinstance(parent, (ast.Assign, ast.AnnAssign)):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        return ast.unparse(targets[0])
    return "a projection"


@check("merged-projections", roles=MODEL_ROLES)
def merged_projections(context: ReviewContext, view: FileView) -> list[Finding]:
    """P8: merged projections of parts with different sizes built with ColumnParallelLinear (wrong TP shards)"""
    findings = []
    fix = manual("use MergedColumnParallelLinear(output_sizes=[...]) with tuple shard ids in load_weights (P8)")
    for call in view.nodes(ast.Call):
        if _is_column_parallel(view, call):
            parts = merged_parts(call)
            if parts:
                target = _assigned_to(call, view.parents)
                findings.append(
                    view.finding(
                        "merged-projections",
                        call,
                        target,
                        f"ColumnParallelLinear over parts of different sizes ({', '.join(parts)}): contiguous TP "
                        "slices mix sub-projections",
                        fix,
                    )
                )
    # classes inheriting a parent __init__ that builds such a projection
    resolver = context.resolver
    for node in view.top_classes():
        info = view.info.classes.get(node.name)
        if info is None or "__init__" in info.methods:
            continue
        member, _ = resolver.constructor(view.module, node.name)
        if member is None or member.function is None or member.owner_module == view.module:
            continue
        parent = class_node(resolver, member.owner_module, member.owner)
        init = (
            next((n for n in parent.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            if parent
            else None
        )
        if init is None:
            continue
        for inherited in ast.walk(init):
            if isinstance(inherited, ast.Call) and _is_column_parallel(None, inherited):
                parts = merged_parts(inherited)
                if parts:
                    parents = {child: n for n in ast.walk(init) for child in ast.iter_child_nodes(n)}
                    findings.append(
                        view.finding(
                            "merged-projections",
                            node,
                            f"{node.name}.__init__",
                            f"inherits {member.owner}.__init__ ({member.owner_module}), which builds "
                            f"{_assigned_to(inherited, parents)} with ColumnParallelLinear over parts of different sizes "
                            f"({', '.join(parts)})",
                            manual(f"override __init__ in {node.name} with MergedColumnParallelLinear (P8)"),
                        )
                    )
    return findings


# --------------------------------------------------------------------------- P11


def _base_modules(context: ReviewContext, view: FileView) -> list[str]:
    """Modules (other than this file) defining the direct bases of the file's classes."""
    modules: list[str] = []
    for info in view.info.classes.values():
        for base in info.bases:
            symbol = context.resolver.resolve_ref(base)
            if (
                symbol is not None
                and symbol.kind == "class"
                and symbol.module != view.module
                and symbol.module not in modules
            ):
                modules.append(symbol.module)
    return modules


def _is_custom_op(resolver: Resolver, module: str, name: str) -> bool:
    symbol = resolver.resolve(module, name)
    cls = resolver.class_of(symbol)
    if symbol is None or cls is None:
        return name.endswith("Op")
    if any(d == "register" for d in cls.decorators):
        return True
    return any(c.name == "CustomOp" for _, c in resolver.mro(symbol.module, symbol.name).classes)


@check("custom-op-paths", roles=MODEL_ROLES)
def custom_op_paths(context: ReviewContext, view: FileView) -> list[Finding]:
    """P11: custom ops imported through another module path than the parent module's (Duplicate op name)"""
    resolver = context.resolver
    findings = []
    parents = _base_modules(context, view)
    for bound, origin in view.info.imports.items():
        if ":" not in origin:
            continue
        module, name = origin.split(":", 1)
        for parent in parents:
            parent_info = resolver.module(parent)
            parent_origin = parent_info.imports.get(name) if parent_info else None
            if not parent_origin or ":" not in parent_origin:
                continue
            parent_module = parent_origin.split(":", 1)[0]
            if parent_module == module or not _is_custom_op(resolver, parent_module, name):
                continue
            mine, theirs = resolver.resolve(module, name), resolver.resolve(parent_module, name)
            if mine is not None and theirs is not None and (mine.module, mine.name) == (theirs.module, theirs.name):
                continue  # a re-export of the same definition: one registration
            line = view.info.import_lines.get(bound, 1)
            findings.append(
                view.finding(
                    "custom-op-paths",
                    line,
                    name,
                    f"imported from {module}, but the parent module {parent} imports it from {parent_module}: "
                    "two module paths register the same CustomOp (Duplicate op name)",
                    manual(f"import {name} from {parent_module}"),
                )
            )
            break
    return findings


# --------------------------------------------------------------------------- P12


def _skipped_inits(
    view: FileView, node: ast.ClassDef, resolver: Resolver
) -> tuple[list[tuple[str, ClassInfo]], str, ast.AST] | None:
    """The MRO classes whose ``__init__`` an override skips, and how it skips them."""
    init = next(
        (n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "__init__"), None
    )
    if init is None:
        return None
    mro = resolver.mro(view.module, node.name)
    rest = mro.classes[1:]
    for call in ast.walk(init):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "__init__"):
            continue
        owner = call.func.value
        text = ast.unparse(owner)
        if text in ("nn.Module", "torch.nn.Module", "Module"):
            return rest, f"{text}.__init__(self)", call
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
            if not owner.args:
                return None
            first = owner.args[0]
            symbol = resolve_name(view, first.id, first) if isinstance(first, ast.Name) else None
            if symbol is None or (symbol.module, symbol.name) == (view.module, node.name):
                return None
            skipped = []
            for module, cls in rest:
                skipped.append((module, cls))
                if (module, cls.name) == (symbol.module, symbol.name):
                    return skipped, f"super({ast.unparse(first)}, self).__init__", call
            return None
        return None
    return None


@check("init-override", roles=MODEL_ROLES)
def init_override(context: ReviewContext, view: FileView) -> list[Finding]:
    """P12: an __init__ that skips a parent's __init__ while inherited methods use attributes only that __init__ sets"""
    resolver = context.resolver
    findings = []
    for node in view.top_classes():
        skipped = _skipped_inits(view, node, resolver)
        if not skipped:
            continue
        classes, how, where = skipped
        mro = resolver.mro(view.module, node.name)
        own = view.info.classes.get(node.name)
        if own is None:
            continue
        # who sets each attribute, outside the skipped __init__s
        set_elsewhere: set[str] = set(own.instance_attributes)
        only_skipped: dict[str, str] = {}
        skipped_keys = {(m, c.name) for m, c in classes}
        for module, cls in mro.classes:
            set_elsewhere |= set(cls.attributes) | set(cls.methods) | {f.name for f in cls.fields}
            for attribute, methods in cls.instance_attributes.items():
                if (module, cls.name) in skipped_keys and methods == ["__init__"]:
                    only_skipped.setdefault(attribute, cls.name)
                else:
                    set_elsewhere.add(attribute)
        # methods the instance runs: the class's own and the inherited ones not overridden
        effective: dict[str, tuple[str, list[str]]] = {}
        for module, cls in mro.classes:
            for name, method in cls.methods.items():
                if name != "__init__" or cls is own:
                    effective.setdefault(name, (cls.name, method.self_reads))
        used: dict[str, str] = {}
        for method_name, (owner, reads) in effective.items():
            for attribute in reads:
                used.setdefault(attribute, f"{owner}.{method_name}")
        for attribute in sorted(used):
            if attribute in only_skipped and attribute not in set_elsewhere:
                findings.append(
                    view.finding(
                        "init-override",
                        where,
                        f"{node.name}.{attribute}",
                        f"{how} skips {only_skipped[attribute]}.__init__, the only place self.{attribute} is set, "
                        f"but {used[attribute]} reads it",
                        manual(
                            f"create self.{attribute} in {node.name}.__init__ as {only_skipped[attribute]}.__init__ does (P12)"
                        ),
                    )
                )
    return findings
