"""What an expression of a migrated file denotes (``target_of``: a symbol, or a member found through
a class's MRO: ``self.m``, ``super().m``, ``Class.m``, ``value.m``) and the class of its value
(``type_of``), statically: one recursion, since ``a.m`` needs the class of ``a`` and the class of
``f()`` needs what ``f`` denotes. What a bare name means in its scope: review/names.py. So that
attribute and call checks reach past names: ``pooling_metadata.get_pooling_cursor()`` with ``pooling_metadata: PoolingMetadata``,
``self.info.parse_mm_data(...)`` in a ``BaseMultiModalProcessor[XProcessingInfo]``.

Followed: ``self``; parameter annotations; a local bound once (or annotated); constructor calls;
return annotations of functions, methods and properties; class attributes and dataclass fields
with annotations; attributes assigned in methods (``self.x: T = ...``, ``self.x = T(...)``,
``self.x = param`` with ``param: T``); type variables, bound by a generic base of the class the
member is read through (``Base[Arg]``), else by their ``bound=``. Anything else is unknown
(None): the checks say nothing about it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from pytest_flmigrate.index.resolve import Member, Mro, Resolver, Symbol, annotation_class_name
from pytest_flmigrate.index.symbols import dotted_text
from pytest_flmigrate.review.base import FileView
from pytest_flmigrate.review.names import ClassRef, resolve_name, self_class

_DEPTH = 6  # inference steps per expression (chains such as ``self.a.b().c``)
_GENERIC = frozenset({"Generic", "typing.Generic", "Protocol", "typing.Protocol"})


def class_symbol(resolver: Resolver, module: str, dotted: str | None) -> Symbol | None:
    """The class or type variable ``dotted`` names in ``module`` (None when it is neither)."""
    if not dotted:
        return None
    symbol = resolver.resolve_ref(f"{module}:{dotted}")
    if symbol is None:
        return None
    if symbol.kind == "class" or (symbol.kind == "assign" and _typevar(resolver, symbol) is not None):
        return symbol
    return None


def annotated_class(
    resolver: Resolver, module: str, annotation: ast.expr | None, through: Symbol | None = None
) -> Symbol | None:
    """The class an annotation written in ``module`` denotes; a type variable is replaced by
    what ``through`` (the class the member is read through) binds it to, else by its bound."""
    symbol = class_symbol(resolver, module, annotation_class_name(annotation))
    if symbol is None or symbol.kind == "class":
        return symbol
    return _bind_typevar(resolver, symbol, through)


def _typevar(resolver: Resolver, symbol: Symbol) -> ast.Call | None:
    """The ``TypeVar(...)`` call that binds ``symbol``, if it is a type variable."""
    tree = resolver.module_tree(symbol.module)
    for node in tree.body if tree is not None else ():
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and (dotted_text(node.value.func) or "").rpartition(".")[2] == "TypeVar"
            and any(isinstance(t, ast.Name) and t.id == symbol.name for t in node.targets)
        ):
            return node.value
    return None


def _type_parameters(node: ast.ClassDef) -> list[str]:
    """The type variables a generic class declares, in order (``Generic[A, B]``, else those of
    its subscripted bases)."""
    found: list[str] = []
    for base in node.bases:
        if not isinstance(base, ast.Subscript):
            continue
        items = base.slice.elts if isinstance(base.slice, ast.Tuple) else [base.slice]
        names = [item.id for item in items if isinstance(item, ast.Name)]
        if dotted_text(base.value) in _GENERIC:
            return names
        found += [name for name in names if name not in found]
    return found


def _bind_typevar(resolver: Resolver, typevar: Symbol, through: Symbol | None) -> Symbol | None:
    if through is not None:
        for module, cls in resolver.mro(through.module, through.name).classes:
            node = resolver.class_node(module, cls.name)
            for base in node.bases if node is not None else ():
                if not isinstance(base, ast.Subscript):
                    continue
                origin = class_symbol(resolver, module, dotted_text(base.value))
                generic = resolver.class_node(origin.module, origin.name) if origin and origin.kind == "class" else None
                if generic is None or typevar.name not in _type_parameters(generic):
                    continue
                items = base.slice.elts if isinstance(base.slice, ast.Tuple) else [base.slice]
                position = _type_parameters(generic).index(typevar.name)
                if position < len(items):
                    bound = class_symbol(resolver, module, annotation_class_name(items[position]))
                    if bound is not None and bound.kind == "class":
                        return bound
    call = _typevar(resolver, typevar)
    for keyword in call.keywords if call is not None else ():
        if keyword.arg == "bound":
            bound = class_symbol(resolver, typevar.module, annotation_class_name(keyword.value))
            return bound if bound is not None and bound.kind == "class" else None
    return None


# ---------------------------------------------------------------------------------------------
# Members of indexed classes


def member_class(resolver: Resolver, owner: Symbol, name: str, through: Symbol) -> Symbol | None:
    """The class of ``instance.name`` where the member is defined by ``owner`` and the instance
    is a ``through``."""
    node = resolver.class_node(owner.module, owner.name)
    if node is None:
        return None
    for statement in node.body:
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and statement.target.id == name
        ):
            return annotated_class(resolver, owner.module, statement.annotation, through)
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) and statement.name == name:
            if any(
                dotted_text(d) in ("property", "cached_property", "functools.cached_property")
                for d in statement.decorator_list
            ):
                return annotated_class(resolver, owner.module, statement.returns, through)
    for method in node.body:
        if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found = _assigned_in(resolver, owner.module, method, name, through)
            if found is not None:
                return found
    return None


def _assigned_in(
    resolver: Resolver, module: str, method: ast.FunctionDef | ast.AsyncFunctionDef, name: str, through: Symbol
) -> Symbol | None:
    """The class of ``self.name`` as ``method`` assigns it."""
    args = [*method.args.posonlyargs, *method.args.args]
    if not args:
        return None
    this = args[0].arg
    parameters = {a.arg: a.annotation for a in [*args, *method.args.kwonlyargs]}
    for node in ast.walk(method):
        targets: list[ast.expr]
        if isinstance(node, ast.AnnAssign):
            targets, value, annotation = [node.target], node.value, node.annotation
        elif isinstance(node, ast.Assign):
            targets, value, annotation = node.targets, node.value, None
        else:
            continue
        if not any(
            isinstance(t, ast.Attribute) and t.attr == name and isinstance(t.value, ast.Name) and t.value.id == this
            for t in targets
        ):
            continue
        if annotation is not None:
            return annotated_class(resolver, module, annotation, through)
        if isinstance(value, ast.Name) and parameters.get(value.id) is not None:
            return annotated_class(resolver, module, parameters[value.id], through)
        if isinstance(value, ast.Call):
            callee = class_symbol(resolver, module, dotted_text(value.func))
            if callee is not None and callee.kind == "class":
                return callee
    return None


def returned_class(
    resolver: Resolver, module: str, class_name: str | None, function: str, through: Symbol | None
) -> Symbol | None:
    """The class a function (or a method of ``class_name``) is annotated to return."""
    if class_name:
        container = resolver.class_node(module, class_name)
        body = container.body if container is not None else []
    else:
        tree = resolver.module_tree(module)
        body = tree.body if tree is not None else []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
            if annotation_class_name(node.returns) in ("Self", "typing.Self", "typing_extensions.Self"):
                return through
            return annotated_class(resolver, module, node.returns, through)
    return None


# ---------------------------------------------------------------------------------------------
# Expressions of a migrated file


@dataclass(frozen=True)
class Target:
    """What an expression denotes: a symbol, or a member looked up on a class (``member`` is
    None when the lookup found nothing and the MRO is fully known: the member is missing)."""

    symbol: Symbol | None = None
    on_class: ClassRef | None = None  # the class a member was looked up on
    member_name: str | None = None
    member: Member | None = None
    via_instance: bool = False  # looked up through an instance (self, super(), a typed value): methods are bound
    mro: Mro | None = None
    typed: bool = False  # the instance's class was inferred (``type_of``), not ``self``/``super()``


def target_of(view: FileView, node: ast.expr) -> Target | None:
    """What ``node`` denotes, when it can be known statically (memoized per node: checks and
    type inference ask about the same sub-expressions again)."""
    cache = view.__dict__.setdefault("_targets", {})
    if node not in cache:
        cache[node] = _target_of(view, node)
    return cache[node]


def _target_of(view: FileView, node: ast.expr) -> Target | None:
    resolver = view.resolver
    if isinstance(node, ast.Name):
        owner = self_class(view, node)
        if owner is not None and node.id == owner[1]:
            return None  # ``self`` itself: an instance
        symbol = resolve_name(view, node.id, node)
        return Target(symbol=symbol) if symbol is not None else None
    if not isinstance(node, ast.Attribute):
        return None
    value = node.value
    # self.m / cls.m
    if isinstance(value, ast.Name):
        owner = self_class(view, node)
        if owner is not None and value.id == owner[1]:
            ref = owner[0]
            mro = resolver.mro(ref.module, ref.name)
            member = resolver.find_member(ref.module, ref.name, node.attr, mro)
            return Target(on_class=ref, member_name=node.attr, member=member, via_instance=True, mro=mro)
    # super().m / super(K, self).m
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
        owner = self_class(view, node)
        if owner is None:
            return None
        ref = owner[0]
        full = resolver.mro(ref.module, ref.name)
        start = ref
        if value.args:
            first = value.args[0]
            symbol = resolve_name(view, first.id, first) if isinstance(first, ast.Name) else None
            if symbol is None or symbol.kind != "class":
                return None
            start = ClassRef(symbol.module, symbol.name)
        mro = full.after(start.module, start.name)
        member = resolver.find_member(start.module, start.name, node.attr, mro)
        return Target(on_class=start, member_name=node.attr, member=member, via_instance=True, mro=mro)
    base = target_of(view, value)
    if base is None or base.symbol is None:
        return _typed_member(view, node)
    symbol = base.symbol
    if symbol.kind == "module":
        found = resolver.resolve(symbol.module, node.attr)
        if found is not None:
            return Target(symbol=found)
        if resolver.has_module(symbol.module):  # an indexed module lacking the attribute
            return Target(on_class=ClassRef(symbol.module, ""), member_name=node.attr)
        return None
    if symbol.kind == "class":
        mro = resolver.mro(symbol.module, symbol.name)
        member = resolver.find_member(symbol.module, symbol.name, node.attr, mro)
        return Target(on_class=ClassRef(symbol.module, symbol.name), member_name=node.attr, member=member, mro=mro)
    if symbol.kind == "external":
        return Target(symbol=Symbol(symbol.module, f"{symbol.name}.{node.attr}".strip("."), "external"))
    return None


def _typed_member(view: FileView, node: ast.Attribute) -> Target | None:
    """``value.attr`` where the class of ``value`` is known from annotations or assignments."""
    instance = type_of(view, node.value)
    if instance is None:
        return None
    resolver = view.resolver
    mro = resolver.mro(instance.module, instance.name)
    member = resolver.find_member(instance.module, instance.name, node.attr, mro)
    return Target(
        on_class=ClassRef(instance.module, instance.name),
        member_name=node.attr,
        member=member,
        via_instance=True,
        mro=mro,
        typed=True,
    )


def type_of(view: FileView, node: ast.expr, depth: int = 0) -> Symbol | None:
    """The indexed class whose instance ``node`` evaluates to, when it can be known statically
    (memoized per node)."""
    if depth > _DEPTH:
        return None
    cache = view.__dict__.setdefault("_types", {})
    if node not in cache:
        cache[node] = _type_of(view, node, depth)
    return cache[node]


def _type_of(view: FileView, node: ast.expr, depth: int) -> Symbol | None:
    resolver = view.resolver
    if isinstance(node, ast.Name):
        owner = self_class(view, node)
        if owner is not None and node.id == owner[1]:
            return _instance_of_self(view, node, owner[0])
        return _local_class(view, node, depth)
    if isinstance(node, ast.Call):
        target = target_of(view, node.func)
        if target is None:
            return None
        if target.symbol is not None:
            symbol = target.symbol
            if symbol.kind == "class":
                return symbol
            if symbol.kind == "function":
                return returned_class(resolver, symbol.module, None, symbol.name, None)
            return None
        member = target.member
        if member is not None and member.function is not None and member.kind != "property" and target.on_class:
            through = Symbol(target.on_class.module, target.on_class.name, "class")
            return returned_class(resolver, member.owner_module, member.owner, member.name, through)
        return None
    if isinstance(node, ast.Attribute):
        target = target_of(view, node)
        if target is None or target.member is None or target.on_class is None or not target.on_class.name:
            return None
        member = target.member
        if member.kind in ("unknown", "external", "method", "classmethod", "staticmethod", "nested class"):
            return None
        through = Symbol(target.on_class.module, target.on_class.name, "class")
        return member_class(resolver, Symbol(member.owner_module, member.owner, "class"), member.name, through)
    return None


def _instance_of_self(view: FileView, node: ast.AST, ref: ClassRef) -> Symbol | None:
    function = view.enclosing_function(node)
    if function is not None and any(dotted_text(d) == "classmethod" for d in function.decorator_list):
        return None  # ``cls``: the class itself, not an instance
    return Symbol(ref.module, ref.name, "class")


def _local_class(view: FileView, node: ast.Name, depth: int) -> Symbol | None:
    """A parameter's annotation, or the value a local is bound to once in its function."""
    function = view.enclosing_function(node)
    if function is None:
        return None
    resolver = view.resolver
    args = function.args
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
        if arg.arg == node.id:
            return annotated_class(resolver, view.module, arg.annotation)
    stores = [
        n for n in ast.walk(function) if isinstance(n, ast.Name) and n.id == node.id and isinstance(n.ctx, ast.Store)
    ]
    if len(stores) != 1:
        return None  # rebound, or bound by a loop, ``with``, tuple unpacking...: unknown
    statement = view.parents.get(stores[0])
    if isinstance(statement, ast.AnnAssign):
        return annotated_class(resolver, view.module, statement.annotation)
    if isinstance(statement, ast.Assign) and statement.targets == [stores[0]]:
        return type_of(view, statement.value, depth + 1)
    return None
