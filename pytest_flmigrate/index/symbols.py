"""A static index of a Python source tree: its modules, the names each defines or imports, and
the shape of its classes and functions.

Extracted with ``ast`` from source (nothing is imported); a whole tree is indexed and cached by
:mod:`pytest_flmigrate.index.build`.

Per module (:class:`ModuleInfo`):

- ``defines``: top-level names bound by ``class``/``def``/assignment -> kind (``class``,
  ``function``, ``assign``; ``annotation`` for a bare ``x: T`` that binds nothing at runtime)
- ``imports``: names bound by imports -> ``"origin:name"`` (``from``) or ``"module"`` (``import``)
- ``all``: the literal ``__all__`` (None when absent), ``stars``: star-imported modules
- ``lazy``: PEP 562 names a module ``__getattr__`` provides -> ``"module:attr"`` (from maps such
  as ``_CLASS_TO_MODULE`` / ``MODULE_ATTRS`` / ``_DEPRECATED_MAPPINGS`` and ``if name == "X"``
  branches), plus transformers' ``_import_structure`` tables
- ``lazy_module``: the module replaces itself with transformers' ``_LazyModule``; its
  ``TYPE_CHECKING`` imports then describe what it provides at runtime
- ``type_checking``: names bound only under ``if TYPE_CHECKING:``
- ``classes`` / ``functions``: :class:`ClassInfo` / :class:`FunctionInfo` of top-level definitions
- ``spans``: top-level definition -> [first line (decorators included), last line]

Names are resolved across modules (re-exports, stars, lazy maps) by
:mod:`pytest_flmigrate.index.resolve`, which also reads the class shapes stored here.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

from pytest_flmigrate.index.records import (
    KEYWORD_ONLY,
    POSITIONAL_ONLY,
    POSITIONAL_OR_KEYWORD,
    VAR_KEYWORD,
    VAR_POSITIONAL,
    ClassInfo,
    FieldInfo,
    FunctionInfo,
    ModuleInfo,
    Param,
)

_DEFAULT_TEXT_LIMIT = 60
# Decorators after which a class is a dataclass-like record with fields.
_DATACLASS_DECORATORS = {"dataclass", "config", "dataclass_transform"}


def module_name(relative: Path) -> tuple[str, bool]:
    """``vllm/a/b.py`` -> (``vllm.a.b``, False); ``vllm/a/__init__.py`` -> (``vllm.a``, True)."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def parse_module(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return None


def parse_source(source: str | bytes, filename: str = "<source>") -> ast.Module | None:
    try:
        return ast.parse(source, filename=filename)
    except (SyntaxError, ValueError):
        return None


def module_info_from_source(source: str | bytes, module: str, is_package: bool = False, path: str = "") -> ModuleInfo:
    """Index one module given as text (e.g. a migrated file not yet in any tree)."""
    tree = parse_source(source, path or module)
    if tree is None:
        return ModuleInfo(path=path, is_package=is_package, parse_error="syntax error")
    return module_info(Path(path), tree, is_package, module)


# ---------------------------------------------------------------------------------------------
# Building one module's info


def is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return False


if sys.version_info >= (3, 11):
    _TRY_STATEMENTS = (ast.Try, ast.TryStar)
else:
    _TRY_STATEMENTS = (ast.Try,)


def _walk_body(body: list[ast.stmt], type_checking: bool = False) -> Iterator[tuple[ast.stmt, bool]]:
    """Statements of a block, looking inside if/try/with blocks; flags the TYPE_CHECKING ones."""
    for node in body:
        if isinstance(node, ast.If):
            checking = is_type_checking(node.test)
            yield from _walk_body(node.body, type_checking or checking)
            yield from _walk_body(node.orelse, type_checking)
        elif isinstance(node, _TRY_STATEMENTS):
            yield from _walk_body(node.body, type_checking)
            for handler in node.handlers:
                yield from _walk_body(handler.body, type_checking)
            yield from _walk_body(node.orelse, type_checking)
            yield from _walk_body(node.finalbody, type_checking)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            yield from _walk_body(node.body, type_checking)
        else:
            yield node, type_checking


def absolute_module(package: str, level: int, module: str | None) -> str:
    """``from <level dots><module> import`` inside ``package`` -> the absolute module name."""
    if level == 0:
        return module or ""
    parts = package.split(".")
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    base = ".".join(parts)
    return f"{base}.{module}" if module else base


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    text = dotted_text(node)
    if text is None:
        return ""
    if text.endswith((".setter", ".getter", ".deleter")):
        return text.rsplit(".", 2)[-2] + "." + text.rsplit(".", 1)[-1]
    return text.rsplit(".", 1)[-1]


def dotted_text(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_text(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _short(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    try:
        text = ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every parsed node
        return "..."
    return text if len(text) <= _DEFAULT_TEXT_LIMIT else text[: _DEFAULT_TEXT_LIMIT - 3] + "..."


def function_info(node: ast.FunctionDef | ast.AsyncFunctionDef, self_reads: list[str] | None = None) -> FunctionInfo:
    args = node.args
    params: list[Param] = []
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for index, (arg, default) in enumerate(zip(positional, defaults)):
        kind = POSITIONAL_ONLY if index < len(args.posonlyargs) else POSITIONAL_OR_KEYWORD
        params.append(Param(arg.arg, kind, default is not None, _short(default), _short(arg.annotation)))
    if args.vararg:
        params.append(Param(args.vararg.arg, VAR_POSITIONAL, annotation=_short(args.vararg.annotation)))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        params.append(Param(arg.arg, KEYWORD_ONLY, default is not None, _short(default), _short(arg.annotation)))
    if args.kwarg:
        params.append(Param(args.kwarg.arg, VAR_KEYWORD, annotation=_short(args.kwarg.annotation)))
    self_name = positional[0].arg if positional else None
    if self_reads is not None:
        reads = self_reads
    else:
        reads = sorted(_self_attributes(node, self_name)[0]) if self_name in ("self", "cls") else []
    return FunctionInfo(
        name=node.name,
        line=_first_line(node),
        end=node.end_lineno or node.lineno,
        params=params,
        decorators=[_decorator_name(d) for d in node.decorator_list],
        is_async=isinstance(node, ast.AsyncFunctionDef),
        self_reads=reads,
    )


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno, *(d.lineno for d in decorators)])


class _Bindings:
    """How a module binds names, to turn base-class expressions into references."""

    def __init__(self, module: str, defines: dict[str, str], imports: dict[str, str]) -> None:
        self.module = module
        self.defines = defines
        self.imports = imports

    def reference(self, node: ast.expr) -> str:
        if isinstance(node, ast.Subscript):  # Generic[T], Foo[int]
            node = node.value
        text = dotted_text(node)
        if text is None:
            return _short(node) or "?"
        head, _, rest = text.partition(".")
        if head in self.imports:
            origin = self.imports[head]
            if ":" in origin:
                module, name = origin.split(":", 1)
                return f"{module}:{name}.{rest}" if rest else f"{module}:{name}"
            # ``import a.b as c`` binds the module a.b; ``import torch`` binds torch
            if rest:
                return f"{origin}:{rest}"
            return origin
        if head in self.defines:
            return f"{self.module}:{text}"
        if head in _BUILTIN_BASES and not rest:
            return f"builtins:{head}"
        return text


_BUILTIN_BASES = {
    "object",
    "Exception",
    "ValueError",
    "RuntimeError",
    "TypeError",
    "KeyError",
    "dict",
    "list",
    "tuple",
    "str",
    "int",
    "float",
    "set",
    "frozenset",
    "type",
    "NotImplementedError",
    "AttributeError",
    "ImportError",
    "BaseException",
    "OSError",
    "IndexError",
    "LookupError",
    "bytes",
    "enum",
}


def _class_info(node: ast.ClassDef, bindings: _Bindings) -> ClassInfo:
    info = ClassInfo(
        name=node.name,
        line=_first_line(node),
        end=node.end_lineno or node.lineno,
        bases=[bindings.reference(base) for base in node.bases],
        decorators=[_decorator_name(d) for d in node.decorator_list],
    )
    for keyword in node.keywords:
        if keyword.arg == "metaclass":
            info.metaclass = bindings.reference(keyword.value)
    info.is_dataclass = any(d in _DATACLASS_DECORATORS for d in info.decorators)
    for statement, _ in _walk_body(node.body):
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = [*statement.args.posonlyargs, *statement.args.args]
            first = arguments[0].arg if arguments else None
            reads, writes = _self_attributes(statement, first if first in ("self", "cls") else None)
            method = function_info(statement, sorted(reads))
            previous = info.methods.get(statement.name)
            if previous is not None and method.kind == "property" and previous.kind == "property":
                continue  # keep the getter of a property with setter
            if previous is not None and "overload" in method.decorators:
                continue
            info.methods[statement.name] = method
            _collect_self_assignments(statement, info.instance_attributes, writes)
        elif isinstance(statement, ast.ClassDef):
            info.attributes[statement.name] = "class"
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
            annotation = _short(statement.annotation) or ""
            if "ClassVar" in annotation:
                info.attributes[name] = "assign"
                continue
            info.attributes.setdefault(name, "assign" if statement.value is not None else "annotation")
            if statement.value is not None:
                info.attributes[name] = "assign"
            has_default, init = _field_default(statement.value)
            info.fields.append(
                FieldInfo(name, has_default, annotation, statement.lineno, init, _short(statement.value))
            )
        elif isinstance(statement, (ast.Assign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                for sub in _bound_names(target):
                    info.attributes[sub.id] = "assign"
    return info


def _bound_names(target: ast.expr) -> list[ast.Name]:
    """The names an assignment target binds (``a``, ``a, b``, ``*a``), not ``a.x`` / ``a[i]``."""
    if isinstance(target, ast.Name):
        return [target]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _bound_names(element)]
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    return []


def _field_default(value: ast.expr | None) -> tuple[bool, bool]:
    """(has a default, is an ``__init__`` parameter) of a class-body annotated assignment."""
    if value is None:
        return False, True
    if isinstance(value, ast.Call) and dotted_text(value.func) in ("field", "dataclasses.field", "Field"):
        keywords = {k.arg: k.value for k in value.keywords if k.arg}
        init = keywords.get("init")
        in_init = not (isinstance(init, ast.Constant) and init.value is False)
        has_default = "default" in keywords or "default_factory" in keywords or bool(value.args)
        return has_default, in_init
    return True, True


def setattr_name(call: ast.Call, self_name: str) -> ast.expr | None:
    """The name argument of ``call`` when it is ``setattr(<self_name>, name, ...)``."""
    if (
        isinstance(call.func, ast.Name)
        and call.func.id == "setattr"
        and len(call.args) >= 2
        and isinstance(call.args[0], ast.Name)
        and call.args[0].id == self_name
    ):
        return call.args[1]
    return None


def _self_attributes(
    method: ast.FunctionDef | ast.AsyncFunctionDef, self_name: str | None
) -> tuple[set[str], set[str]]:
    """(attributes read, attributes assigned) through ``self_name`` in a method, in one walk."""
    reads: set[str] = set()
    writes: set[str] = set()
    if not self_name:
        return reads, writes
    for sub in ast.walk(method):
        if isinstance(sub, ast.Attribute):
            value = sub.value
            if isinstance(value, ast.Name) and value.id == self_name:
                (writes if isinstance(sub.ctx, ast.Store) else reads).add(sub.attr)
        elif isinstance(sub, ast.Call):
            name = setattr_name(sub, self_name)
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                writes.add(name.value)
        if (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Attribute)
            and sub.func.attr in _REGISTERING_METHODS
            and isinstance(sub.func.value, ast.Name)
            and sub.func.value.id == self_name
            and sub.args
            and isinstance(sub.args[0], ast.Constant)
            and isinstance(sub.args[0].value, str)
        ):
            writes.add(sub.args[0].value)
    return reads, writes


# nn.Module methods that bind an attribute named by their first argument.
_REGISTERING_METHODS = {"register_buffer", "register_parameter", "add_module", "register_module"}


def _collect_self_assignments(
    method: ast.FunctionDef | ast.AsyncFunctionDef, found: dict[str, list[str]], writes: set[str]
) -> None:
    for attribute in sorted(writes):
        _add(found, attribute, method.name)


def _add(found: dict[str, list[str]], attribute: str, method: str) -> None:
    methods = found.setdefault(attribute, [])
    if method not in methods:
        methods.append(method)


def _string_list(node: ast.expr | None) -> list[str] | None:
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return values
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _string_list(node.left), _string_list(node.right)
        return (left or []) + (right or []) if left is not None or right is not None else None
    return None


def module_info(relative: Path, tree: ast.Module, is_package: bool, module: str) -> ModuleInfo:
    info = ModuleInfo(path=str(relative), is_package=is_package)
    package = module if is_package else module.rpartition(".")[0]
    runtime_bound: set[str] = set()
    checking_bound: set[str] = set()
    class_nodes: list[ast.ClassDef] = []
    getattr_node: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    dict_literals: dict[str, ast.Dict] = {}
    list_literals: dict[str, list[str]] = {}
    import_structure: dict[str, list[str]] = {}

    def bind(name: str, checking: bool) -> None:
        (checking_bound if checking else runtime_bound).add(name)

    for node, checking in _walk_body(tree.body):
        if isinstance(node, ast.ClassDef):
            info.defines[node.name] = "class"
            info.spans[node.name] = [_first_line(node), node.end_lineno or node.lineno]
            class_nodes.append(node)
            bind(node.name, checking)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == "__getattr__":
                getattr_node = node
            info.defines[node.name] = "function"
            info.functions[node.name] = function_info(node)
            info.spans[node.name] = [_first_line(node), node.end_lineno or node.lineno]
            bind(node.name, checking)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            annotation_only = isinstance(node, ast.AnnAssign) and node.value is None
            for target in targets:
                for name in _bound_names(target):
                    if isinstance(name, ast.Name):
                        if annotation_only:
                            info.defines.setdefault(name.id, "annotation")
                        else:
                            info.defines[name.id] = "assign"
                            bind(name.id, checking)
                        info.spans.setdefault(name.id, [node.lineno, node.end_lineno or node.lineno])
            _note_module_tables(node, info, dict_literals, import_structure, list_literals)
        elif isinstance(node, ast.ImportFrom):
            origin = absolute_module(package, node.level, node.module)
            for alias in node.names:
                if alias.name == "*":
                    if origin not in info.stars:
                        info.stars.append(origin)
                    continue
                bound = alias.asname or alias.name
                info.imports[bound] = f"{origin}:{alias.name}"
                info.import_lines.setdefault(bound, node.lineno)
                bind(bound, checking)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                info.imports[bound] = alias.name if alias.asname else alias.name.split(".")[0]
                info.import_lines.setdefault(bound, node.lineno)
                bind(bound, checking)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            _note_module_calls(node.value, info, import_structure)
    info.type_checking = sorted(checking_bound - runtime_bound)
    bindings = _Bindings(module, info.defines, info.imports)
    for node in class_nodes:
        info.classes[node.name] = _class_info(node, bindings)
    if getattr_node is not None:
        _lazy_from_getattr(getattr_node, info, package, dict_literals, list_literals)
    info.lazy_module = "_LazyModule" in info.imports and _sets_lazy_module(tree)
    for submodule, lazy_names in import_structure.items():
        origin_module = absolute_module(package, 1, submodule) if package else submodule
        for lazy_name in lazy_names:
            info.lazy.setdefault(lazy_name, f"{origin_module}:{lazy_name}")
    return info


def _note_module_tables(
    node: ast.stmt,
    info: ModuleInfo,
    dicts: dict[str, ast.Dict],
    structure: dict[str, list[str]],
    lists: dict[str, list[str]],
) -> None:
    """``__all__`` (assign / +=), string dict tables, transformers' ``_import_structure``."""
    target: ast.expr
    value: ast.expr | None
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        target, value = node.target, node.value
    else:
        return
    if isinstance(target, ast.Name) and target.id == "__all__":
        names = _string_list(value)
        if names is not None:
            if isinstance(node, ast.AugAssign) and info.all is not None:
                info.all.extend(names)
            else:
                info.all = names
    elif isinstance(target, ast.Name) and isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        names = _string_list(value)
        if names:
            lists[target.id] = names
    elif isinstance(target, ast.Name) and isinstance(value, ast.Dict):
        dicts[target.id] = value
        if target.id == "_import_structure":
            for key, entry in zip(value.keys, value.values):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    structure.setdefault(key.value, []).extend(_string_list(entry) or [])
    elif (structure_key := _import_structure_key(target)) is not None:
        structure.setdefault(structure_key, []).extend(_string_list(value) or [])


def _note_module_calls(call: ast.Call, info: ModuleInfo, structure: dict[str, list[str]]) -> None:
    """``__all__.extend([...])``/``append`` and ``_import_structure["m"].extend([...])``."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in ("extend", "append") and call.args):
        return
    owner = func.value
    values = (
        _string_list(call.args[0])
        if func.attr == "extend"
        else (
            [call.args[0].value]
            if isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
            else None
        )
    )
    if values is None:
        return
    if isinstance(owner, ast.Name) and owner.id == "__all__":
        info.all = (info.all or []) + values
    elif (key := _import_structure_key(owner)) is not None:
        structure.setdefault(key, []).extend(values)


def _import_structure_key(node: ast.expr) -> str | None:
    """``"m"`` for ``_import_structure["m"]``, None for anything else."""
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "_import_structure"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return node.slice.value
    return None


def _sets_lazy_module(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and dotted_text(node.func) in ("_LazyModule",):
            return True
    return False


def _lazy_from_getattr(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    info: ModuleInfo,
    package: str,
    dicts: dict[str, ast.Dict],
    lists: dict[str, list[str]],
) -> None:
    """Names a PEP 562 ``__getattr__`` provides, and where each comes from when visible."""
    parameter = node.args.args[0].arg if node.args.args else "name"
    listed = False

    def from_table(table: str) -> bool:
        if table in dicts:
            for key, value in zip(dicts[table].keys, dicts[table].values):
                if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                    continue
                target = value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else ""
                info.lazy[key.value] = _lazy_target(key.value, target, package)
            return True
        names = info.all if table == "__all__" else lists.get(table)
        if names is not None:
            for name in names:
                info.lazy.setdefault(name, "")  # provided, from code we do not follow
            return True
        return False

    # 1. tables consulted by ``name in TABLE`` / ``name not in TABLE`` / ``TABLE.get(name)`` / ``TABLE[name]``
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Compare)
            and isinstance(sub.left, ast.Name)
            and sub.left.id == parameter
            and len(sub.ops) == 1
            and isinstance(sub.ops[0], (ast.In, ast.NotIn))
            and isinstance(sub.comparators[0], ast.Name)
        ):
            listed = from_table(sub.comparators[0].id) or listed
        elif (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Attribute)
            and sub.func.attr == "get"
            and isinstance(sub.func.value, ast.Name)
            and sub.args
            and isinstance(sub.args[0], ast.Name)
            and sub.args[0].id == parameter
        ):
            listed = from_table(sub.func.value.id) or listed
        elif (
            isinstance(sub, ast.Subscript)
            and isinstance(sub.value, ast.Name)
            and isinstance(sub.slice, ast.Name)
            and sub.slice.id == parameter
        ):
            listed = from_table(sub.value.id) or listed
    # 2. ``if name == "X": ... return Y`` branches
    for sub in ast.walk(node):
        if not isinstance(sub, ast.If):
            continue
        test = sub.test
        if not (
            isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == parameter
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)
            and isinstance(test.comparators[0], ast.Constant)
            and isinstance(test.comparators[0].value, str)
        ):
            continue
        listed = True
        name = test.comparators[0].value
        local: dict[str, str] = {}
        returned: str | None = None
        for statement in ast.walk(ast.Module(body=sub.body, type_ignores=[])):
            if isinstance(statement, ast.ImportFrom):
                origin = absolute_module(package, statement.level, statement.module)
                for alias in statement.names:
                    local[alias.asname or alias.name] = f"{origin}:{alias.name}"
            elif isinstance(statement, ast.Return) and isinstance(statement.value, ast.Name):
                returned = statement.value.id
        target = ""
        if returned:
            target = local.get(returned) or info.imports.get(returned, "")
            if target and ":" not in target:
                target = ""
        info.lazy.setdefault(name, target)
    if not listed:
        info.dynamic_getattr = True


def _lazy_target(name: str, value: str, package: str) -> str:
    """A lazy-map value -> ``module:attr`` for ``".x.y:Attr"``; a bare ``module`` for ``"pkg.mod"``
    and ``"submodule"`` (the resolver tries ``module.name`` first, then the module itself)."""
    if not value:
        return ""
    module, colon, attr = value.partition(":")
    if module.startswith("."):
        level = len(module) - len(module.lstrip("."))
        module = absolute_module(package, level, module.lstrip(".") or None)
    elif "." not in module and package:
        module = f"{package}.{module}"  # a submodule name (vllm.utils' deprecation table)
    return f"{module}:{attr}" if colon else module
