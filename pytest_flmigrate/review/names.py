"""What a name in a migrated file refers to in its scope, statically: a module, class or function
of the pinned trees or the plugin (None where a local shadows it); the class of a method's
``self``; the shape of a call. What an expression denotes (``self.m``, ``super().m``, ``a.b``)
and the class of its value: review/types.py, which builds on this module.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from pytest_flmigrate.index.resolve import Symbol
from pytest_flmigrate.review.base import FileView

FunctionNode = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class ClassRef:
    module: str
    name: str


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
            return view.resolver.resolve_ref(local) if local else None
        function = view.enclosing_function(function)
    return view.resolver.resolve(view.module, name)


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


def call_shape(call: ast.Call) -> tuple[int, list[str], bool, bool]:
    """(positional count, keyword names, has ``*x``, has ``**x``) of a call."""
    positional = sum(1 for a in call.args if not isinstance(a, ast.Starred))
    star_args = any(isinstance(a, ast.Starred) for a in call.args)
    keywords = [k.arg for k in call.keywords if k.arg is not None]
    star_kwargs = any(k.arg is None for k in call.keywords)
    return positional, keywords, star_args, star_kwargs
