"""What an expression in a migrated file refers to, statically: a module, class or function of
the pinned trees or the plugin, or a member found through a class's MRO (``self.m``,
``super().m``, ``Class.m``). Anything else (locals, instances, call results) is unknown and
checks say nothing about it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from pytest_flmigrate.index.records import FunctionInfo
from pytest_flmigrate.index.resolve import Member, Mro, Symbol
from pytest_flmigrate.review.base import FileView

FunctionNode = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class ClassRef:
    module: str
    name: str


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
    typed: bool = False  # the instance's class was inferred (review/types.py), not ``self``/``super()``


def local_names(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Names bound inside a function (parameters, assignments, loops, with, except, imports)."""
    args = function.args
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    if args.vararg:
        names.add(args.vararg.arg)
    if args.kwarg:
        names.add(args.kwarg.arg)
    body = function.body if isinstance(function.body, list) else [function.body]
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    names.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, FunctionNode + (ast.ClassDef,)):
                names.add(node.name)
    return names


def _local_import(function: ast.AST, name: str, view: FileView) -> str | None:
    """``module:name`` of a function-local ``from M import name``, if the function has one."""
    from pytest_flmigrate.index.symbols import absolute_module

    package = view.module if view.file.is_package else view.module.rpartition(".")[0]
    for node in ast.walk(function):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return f"{absolute_module(package, node.level, node.module)}:{alias.name}"
    return None


def resolve_name(view: FileView, name: str, at: ast.AST) -> Symbol | None:
    """The module-level meaning of ``name`` at node ``at`` (None if a local shadows it)."""
    function = view.enclosing_function(at)
    while function is not None:
        if name in _locals_cached(view, function):
            local = _local_import(function, name, view)
            return view.context.resolver.resolve_ref(local) if local else None
        function = view.enclosing_function(function)
    return view.context.resolver.resolve(view.module, name)


def _locals_cached(view: FileView, function) -> set[str]:
    cache = view.__dict__.setdefault("_locals", {})
    if function not in cache:
        cache[function] = local_names(function)
    return cache[function]


def self_class(view: FileView, node: ast.AST) -> tuple[ClassRef, str] | None:
    """(class, first parameter name) when ``node`` is inside a method of a top-level class of
    the file whose first parameter is ``self``/``cls`` (not a staticmethod)."""
    cls = view.enclosing_class(node)
    function = view.enclosing_function(node)
    # a nested function (closure) in the method still sees ``self``
    while function is not None and view.parents.get(function) is not cls:
        function = view.enclosing_function(function)
    if cls is None or function is None or cls not in view.tree.body:
        return None
    args = [*function.args.posonlyargs, *function.args.args]
    if not args or any(_decorator(d) == "staticmethod" for d in function.decorator_list):
        return None
    return ClassRef(view.module, cls.name), args[0].arg


def _decorator(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def target_of(view: FileView, node: ast.expr) -> Target | None:
    """What ``node`` denotes, when it can be known statically (memoized per node: checks and
    type inference ask about the same sub-expressions again)."""
    cache = view.__dict__.setdefault("_targets", {})
    if node not in cache:
        cache[node] = _target_of(view, node)
    return cache[node]


def _target_of(view: FileView, node: ast.expr) -> Target | None:
    resolver = view.context.resolver
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
    from pytest_flmigrate.review.types import type_of

    instance = type_of(view, node.value)
    if instance is None:
        return None
    resolver = view.context.resolver
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
    resolver = view.context.resolver
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
    member, _ = view.context.resolver.constructor(module, name)
    if member is None or member.function is None or _signature_opaque(member.function):
        return None
    return Callee(label, member.owner_module, member.owner, "__init__", member.function, True)


def _signature_opaque(function: FunctionInfo) -> bool:
    """Decorators that may change what a function accepts."""
    return any(d in ("overload", "wraps", "singledispatch", "singledispatchmethod") for d in function.decorators)


def call_shape(call: ast.Call) -> tuple[int, list[str], bool, bool]:
    """(positional count, keyword names, has ``*x``, has ``**x``) of a call."""
    positional = sum(1 for a in call.args if not isinstance(a, ast.Starred))
    star_args = any(isinstance(a, ast.Starred) for a in call.args)
    keywords = [k.arg for k in call.keywords if k.arg is not None]
    star_kwargs = any(k.arg is None for k in call.keywords)
    return positional, keywords, star_args, star_kwargs
