"""What a model's code does with its config's fields, and the kind of value each use implies
(host side, ast).

infer.py values a field by its role (its name) or the code's default; a field with neither is
valued by how the code uses it, where that is unambiguous. The uses found (``collect``):

- a truth value (``if config.x:``, ``not``, ``and``/``or`` in a test): ``BOOL``;
- a count: ``range()``, ``//`` or ``%``, an index, ``int()``, the first two arguments of a
  ``...Linear`` or ``...Embedding``: ``INT``; arithmetic or a comparison with an int: ``NUMBER``;
  with a float: ``FLOAT``;
- a string compared with literals (``== "sigmoid"``, ``in ("a", "b")``): ``STR`` and the literals
  (``str()``: ``STR`` alone);
- iterated, ``len()``-measured or indexed by a number: ``LIST``, its element the path ``x.[]``;
- subscripted by a string or ``.get("k")`` (read when present, as ``hasattr``): ``DICT``, its keys
  ``x.k``; ``f(**x)``: ``DICT`` of ``f``'s parameters; attribute-accessed: ``CONFIG``, its fields
  ``x.k``;
- passed to a parameter annotated ``bool``/``int``/``float``/``str``/``list``/``dict`` (a function
  or class of the same sources, or one ``signature`` describes): that kind, the parameter's
  literal default and its name;
- ``x or []`` as a value: the fallback literal's kind (``x or fallback`` says nothing otherwise).

Beside the uses, which other code reads the config: the names a module calls with it
(``config_callees``: a layer class given the model's config) and the model types a config module
makes sub-configs of (``mapped_model_types``: ``CONFIG_MAPPING["lfm2"]``).

A use that takes ``None`` as a value of its own (``x is None``, ``x or fallback`` as a value, a
parameter annotated ``X | None`` or defaulting to ``None``, a ``getattr``/``.get`` default of
``None``) makes the path ``optional``: a config class leaving it ``None`` means something there.
An ``assert`` of the path (``assert config.tie_word_embeddings``, ``assert x is not None``, an
operand of ``and`` in one; ``if not x: raise ...``) makes it ``asserted``: a None or false value
fails upstream's code.

The field's value is followed wherever the code puts it: a local name (``text_config =
config.text_config``, or ``config`` rebound to a sub-config), ``self.x`` in the class that sets it,
and a parameter of a function or class of the same sources (by position, keyword or ``**``), in
the callee's body; a name given several paths holds them all. ``Use.kind`` merges what a field's
uses say: a truth test of a field also used as a count or a container is a presence test; a count
and a string, or a list and a dict, are ambiguous (``AMBIGUOUS``: no value is given, the field
fails with its name).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

BOOL, INT, NUMBER, FLOAT, STR, LIST, DICT, CONFIG, AMBIGUOUS = (
    "bool",
    "int",
    "number",
    "float",
    "str",
    "list",
    "dict",
    "config",
    "ambiguous",
)
#: the path of a list's element under the list's own path
ELEMENT = "[]"
#: names (or the last attribute) that hold the model's config in vLLM model code (infer.py's)
CONFIG_HOLDERS = frozenset({"config", "hf_config"})
#: builtins whose argument is a sequence
SEQUENCE_CALLS = frozenset({"len", "enumerate", "zip", "list", "tuple", "sorted", "reversed", "set", "sum"})
#: builtins whose argument is (made) a value of that kind
CONVERSIONS = {"int": INT, "float": FLOAT, "bool": BOOL, "str": STR}
#: the names of a type annotation and the kind they say
ANNOTATIONS = {
    "bool": BOOL,
    "int": INT,
    "float": FLOAT,
    "str": STR,
    "list": LIST,
    "List": LIST,
    "tuple": LIST,
    "Tuple": LIST,
    "Sequence": LIST,
    "dict": DICT,
    "Dict": DICT,
    "Mapping": DICT,
}
#: layer constructors whose first two positional arguments are dimensions
DIMENSION_CALLS = ("Linear", "Embedding")

Path = tuple[str, ...]
#: a callee defined outside the sources (its dotted name) -> its parameters as (name, annotation text,
#: default text, positional), in order; None when unknown
Signature = Callable[[str], "list[tuple[str, str | None, str | None, bool]] | None"]


@dataclass
class Use:
    """What the uses of one path say."""

    kinds: set[str] = field(default_factory=set)
    literals: list[str] = field(default_factory=list)  # strings it is compared with, in source order
    defaults: list[Any] = field(default_factory=list)  # literal defaults of the parameters it is passed to
    params: list[str] = field(default_factory=list)  # names of the parameters it is passed to
    children: dict[str, bool] = field(default_factory=dict)  # key or field -> read without a default
    default: Any = None  # a default the code reads it with (getattr's third argument, .get's second)
    has_default: bool = False
    optional: bool = False  # some use takes None as a value (module docstring)
    asserted: bool = False  # an ``assert`` needs it true, or not None (module docstring)

    @property
    def kind(self) -> str | None:
        """The one kind of value the uses imply; None without evidence, AMBIGUOUS when they disagree."""
        kinds = set(self.kinds)
        if kinds & {INT, NUMBER, FLOAT, STR, LIST, DICT, CONFIG}:
            kinds.discard(BOOL)  # a truth test of a count or a container: a presence test
        if INT in kinds or FLOAT in kinds:
            kinds.discard(NUMBER)
        if kinds == {DICT, CONFIG}:
            kinds = {CONFIG}  # ``x.get("k")`` on a config object: a sub-config read both ways
        if not kinds:
            return None
        return kinds.pop() if len(kinds) == 1 else AMBIGUOUS


class Uses(dict[Path, Use]):
    """path -> Use, a path being the field and the keys, fields or ``[]`` under it."""

    def at(self, path: Path) -> Use:
        return self.setdefault(path, Use())

    def add(self, path: Path, kind: str) -> None:
        self.at(path).kinds.add(kind)

    def child(self, path: Path, name: str, required: bool, container: str) -> Path:
        """``path``'s child ``name`` (``path`` read as ``container``); a child once required stays so."""
        use = self.at(path)
        use.kinds.add(container)
        use.children[name] = use.children.get(name, False) or required
        return (*path, name)


def collect(sources: list[str], signature: Signature | None = None) -> Uses:
    """The uses of every config path in ``sources`` (module texts), followed through names,
    ``self`` attributes and parameters until nothing new is bound."""
    trees = [ast.parse(source) for source in sources]
    code = _Code(trees, signature)
    for _ in range(8):
        if not code.bind():
            break
    return code.uses()


#: the names of a model's text config (``config = hf_config.text_config``) when given to a callee
TEXT_CONFIGS = frozenset({"text_config", "language_config", "llm_config"})


def config_callees(source: str) -> set[str]:
    """The names ``source`` calls with the model's config (or its text config) as an argument:
    ``QwenGDNLinearAttention(config, ...)``, ``Layer(config=hf_config.text_config)``."""
    callees: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
        if any(_names_config(argument) for argument in arguments):
            callees.add(node.func.id)
    return callees


def _names_config(node: ast.AST) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    return name in CONFIG_HOLDERS or name in TEXT_CONFIGS


def mapped_model_types(source: str) -> list[str]:
    """The model types a config module makes configs of by name (``CONFIG_MAPPING["lfm2"]``), in order."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "CONFIG_MAPPING":
            name = _string(node.slice)
            if name is not None and name not in found:
                found.append(name)
    return found


@dataclass(frozen=True)
class _Param:
    scope: ast.AST | None  # the callee's node when it is in the sources (its body sees the argument)
    name: str
    annotation: ast.AST | None
    positional: bool
    default: ast.AST | None


@dataclass
class _Scope:
    function: ast.AST | None
    klass: ast.ClassDef | None


class _Code:
    def __init__(self, trees: list[ast.Module], signature: Signature | None) -> None:
        self.signature = signature
        self.parent: dict[ast.AST, ast.AST] = {}
        self.scope: dict[ast.AST, _Scope] = {}
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.methods: dict[tuple[ast.ClassDef, str], ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.nodes: list[ast.AST] = []
        #: (function or class node, name) -> the config path bound to it (a local, a parameter, ``self.name``)
        self.bound: dict[tuple[ast.AST, str], list[Path]] = {}
        for tree in trees:
            self._walk(tree, _Scope(None, None))

    def _walk(self, tree: ast.AST, scope: _Scope) -> None:
        """Record every node's parent and scope, and the functions and classes defined (iterative:
        a long expression nests deeper than Python's recursion limit)."""
        pending = [(tree, scope)]
        while pending:
            node, scope = pending.pop()
            self.scope[node] = scope
            self.nodes.append(node)
            inner = scope
            if isinstance(node, ast.ClassDef):
                inner = _Scope(None, node)
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        self.methods[(node, item.name)] = item
                init = self._init(node)
                if init is not None:
                    self.functions.setdefault(node.name, init)  # ``Layer(config)``: its ``__init__``
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = _Scope(node, scope.klass)
                if scope.klass is None and scope.function is None:
                    self.functions.setdefault(node.name, node)
            children = list(ast.iter_child_nodes(node))
            for child in children:
                self.parent[child] = node
            pending.extend((child, inner) for child in reversed(children))

    def _init(self, klass: ast.ClassDef) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        return next(
            (item for item in klass.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"),
            None,
        )

    # -- where a config path flows

    def paths(self, node: ast.AST) -> list[Path]:
        """The config paths ``node`` may evaluate to (``()``: the config itself); empty for none."""
        scope = self.scope.get(node)
        if scope is None:
            return []
        if isinstance(node, ast.Name):
            if scope.function is not None and (scope.function, node.id) in self.bound:
                return self.bound[(scope.function, node.id)]
            return [()] if node.id in CONFIG_HOLDERS else []
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self" and scope.klass is not None:
                if (scope.klass, node.attr) in self.bound:
                    return self.bound[(scope.klass, node.attr)]
            if node.attr in CONFIG_HOLDERS:
                return [()]
            if node.attr.startswith("_") or self._called(node):
                return []
            return [(*inner, node.attr) for inner in self.paths(node.value)]
        if isinstance(node, ast.Subscript):
            key = _string(node.slice)
            return [(*inner, ELEMENT if key is None else key) for inner in self.paths(node.value)]
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
                name = _string(node.args[1])
                return [(*inner, name) for inner in self.paths(node.args[0])] if name is not None else []
            if isinstance(func, ast.Attribute) and func.attr == "get" and node.args:
                name = _string(node.args[0])
                return [(*inner, name) for inner in self.paths(func.value)] if name is not None else []
        return []

    def _called(self, node: ast.Attribute) -> bool:
        parent = self.parent.get(node)
        return isinstance(parent, ast.Call) and parent.func is node

    def bind(self) -> bool:
        """One pass binding names, ``self`` attributes and parameters to the paths assigned or
        passed to them, from the last pass's bindings; whether they changed."""
        bound: dict[tuple[ast.AST, str], list[Path]] = {}

        def add(key: tuple[ast.AST, str], paths: list[Path]) -> None:
            known = bound.setdefault(key, [])
            known.extend(path for path in paths if path not in known)

        for node in self.nodes:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                key = self._target(node.targets[0])
                if key is not None:
                    add(key, self.paths(node.value))
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                key = self._target(node.target)
                if key is not None:
                    add(key, self.paths(node.value))
            elif isinstance(node, ast.For | ast.comprehension):
                key = self._target(node.target)
                if key is not None:
                    add(key, [(*path, ELEMENT) for path in self.paths(node.iter)])
            elif isinstance(node, ast.Call):
                for param, argument in self._arguments(node):
                    if param.scope is not None:
                        add((param.scope, param.name), self.paths(argument))
                for param, splatted in self._splatted(node):
                    if param.scope is not None:
                        add((param.scope, param.name), [(*path, param.name) for path in self.paths(splatted)])
        bound = {key: paths for key, paths in bound.items() if paths}
        changed = bound != self.bound
        self.bound = bound
        return changed

    def _target(self, target: ast.AST) -> tuple[ast.AST, str] | None:
        """Where an assignment to ``target`` binds: (function, local name) or (class, ``self``
        attribute, ``self.config`` too: ``self.config = hf_config.text_config``)."""
        scope = self.scope[target]
        if isinstance(target, ast.Name) and scope.function is not None:
            return scope.function, target.id
        if (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "self"
            and scope.klass is not None
        ):
            return scope.klass, target.attr
        return None

    def _arguments(self, call: ast.Call) -> Iterator[tuple[_Param, ast.AST]]:
        """Each argument of ``call`` that a known callee takes, with the parameter taking it."""
        params = self._params(call)
        if params is None:
            return
        positional = [p for p in params if p.positional]
        for index, argument in enumerate(call.args):
            if isinstance(argument, ast.Starred):
                break
            if index < len(positional):
                yield positional[index], argument
        by_name = {p.name: p for p in params}
        for keyword in call.keywords:
            if keyword.arg in by_name:
                yield by_name[keyword.arg], keyword.value

    def _splatted(self, call: ast.Call) -> Iterator[tuple[_Param, ast.AST]]:
        """Each parameter a ``**x`` argument of ``call`` fills, with ``x``."""
        splats = [keyword.value for keyword in call.keywords if keyword.arg is None]
        params = self._params(call) if splats else None
        for splatted in splats:
            for param in params or ():
                yield param, splatted

    def _params(self, call: ast.Call) -> list[_Param] | None:
        """The callee's parameters, ``self`` left out; None for a callee nothing describes."""
        callee = self._callee(call)
        if callee is not None:
            args = callee.args
            positional = [*args.posonlyargs, *args.args]
            defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
            defaults += args.defaults
            params = [_Param(callee, a.arg, a.annotation, True, d) for a, d in zip(positional, defaults)]
            params += [_Param(callee, a.arg, a.annotation, False, d) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
            return params[1:] if positional and positional[0].arg in ("self", "cls") else params
        name = _dotted(call.func)
        described = self.signature(name) if self.signature is not None and name is not None else None
        if described is None:
            return None
        return [_Param(None, p, _expression(a), positional, _expression(d)) for p, a, d, positional in described]

    def _callee(self, call: ast.Call) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        func = call.func
        if isinstance(func, ast.Name):
            return self.functions.get(func.id)
        scope = self.scope.get(call)
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "self"
            and scope is not None
            and scope.klass is not None
        ):
            return self.methods.get((scope.klass, func.attr))
        return None

    # -- what each use says

    def uses(self) -> Uses:
        found = Uses()
        for node in self.nodes:
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                continue
            for path in self.paths(node):
                if path:
                    self._record(found, node, path)
        return found

    def _record(self, found: Uses, node: ast.AST, path: Path) -> None:
        self._parents_of(found, node, path)
        parent = self.parent.get(node)
        if parent is None:
            return
        if self._tested(node):
            found.add(path, BOOL)
            found.at(path).asserted = found.at(path).asserted or self._asserted(node)
        elif isinstance(parent, ast.Compare):
            self._compared(found, parent, node, path)
        elif isinstance(parent, ast.BinOp | ast.AugAssign):
            self._arithmetic(found, parent, node, path)
        elif isinstance(parent, ast.Subscript) and parent.slice is node:
            found.add(path, INT)
        elif isinstance(parent, ast.For | ast.comprehension) and parent.iter is node:
            found.add(path, LIST)
        elif isinstance(parent, ast.Call) and node in parent.args:
            self._argument(found, parent, node, path)
        elif isinstance(parent, ast.keyword):
            call = self.parent.get(parent)
            if isinstance(call, ast.Call) and parent.arg is None:
                self._splat(found, call, path)
            elif isinstance(call, ast.Call):
                self._argument(found, call, node, path)
        elif isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.Or):
            self._fallback(found, parent, node, path)
        elif isinstance(parent, ast.Attribute) and self._called(parent) and parent.attr in ("items", "keys", "values"):
            found.add(path, DICT)

    def _splat(self, found: Uses, call: ast.Call, path: Path) -> None:
        """``f(**x)``: ``x`` is a dict of ``f``'s parameters, each required unless it has a default."""
        for param, _ in self._splatted(call):
            child = found.child(path, param.name, param.default is None, DICT)
            kind = _annotated(param.annotation)
            if kind is not None:
                found.add(child, kind)
            literal = _literal(param.default) if param.default is not None else _NONE
            if literal is not _NONE:
                found.at(child).default, found.at(child).has_default = literal, True

    def _fallback(self, found: Uses, boolop: ast.BoolOp, node: ast.AST, path: Path) -> None:
        """``x or []`` as a value: ``x`` is of its literal fallback's kind (a list, a dict, a number, a
        string), and None stands for that fallback (optional)."""
        found.at(path).optional = True
        for other in boolop.values:
            if other is node:
                continue
            if isinstance(other, ast.List | ast.Tuple):
                found.add(path, LIST)
            elif isinstance(other, ast.Dict):
                found.add(path, DICT)
            elif isinstance(other, ast.Constant) and not isinstance(other.value, bool):
                kind = {int: NUMBER, float: FLOAT, str: STR}.get(type(other.value))
                if kind is not None:
                    found.add(path, kind)

    def _tested(self, node: ast.AST) -> bool:
        """Whether ``node`` is a truth test: an ``if``/``while``/``assert`` condition, ``not``'s
        operand, or an ``and``/``or`` operand that is itself tested (``x or fallback`` as a value
        says nothing of ``x``'s kind)."""
        parent = self.parent.get(node)
        if isinstance(parent, ast.If | ast.While | ast.IfExp | ast.Assert):
            return parent.test is node
        if isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not):
            return True
        if isinstance(parent, ast.comprehension):
            return node in parent.ifs
        return isinstance(parent, ast.BoolOp) and self._tested(parent)

    def _asserted(self, node: ast.AST) -> bool:
        """Whether ``node`` must be true for an ``assert`` to pass (its test, or an ``and`` operand
        of it), or for the code not to raise (``if not x: raise ...``)."""
        parent = self.parent.get(node)
        if isinstance(parent, ast.Assert):
            return parent.test is node
        if isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not):
            branch = self.parent.get(parent)
            return isinstance(branch, ast.If) and branch.test is parent and isinstance(branch.body[0], ast.Raise)
        return isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.And) and self._asserted(parent)

    def _parents_of(self, found: Uses, node: ast.AST, path: Path) -> None:
        """How ``node`` reads ``path`` from the path above it, when it reads it there (a field, a
        key, an element; a name or ``self`` attribute holding it was read where it was set)."""
        inner, last = path[:-1], path[-1]
        if isinstance(node, ast.Attribute) and not self._holds(node):
            found.child(inner, last, True, CONFIG)
        elif isinstance(node, ast.Subscript):
            if last == ELEMENT:
                found.add(inner, LIST)
            else:
                found.child(inner, last, True, DICT)
        elif isinstance(node, ast.Call):
            is_getattr = isinstance(node.func, ast.Name)  # getattr(x, "k"[, default]), else x.get("k"[, default])
            given = 3 if is_getattr else 2  # ``x.get("k")`` alone: read when present, as ``hasattr``
            has_default, default = len(node.args) >= given, node.args[given - 1] if len(node.args) >= given else None
            found.child(inner, last, is_getattr and not has_default, CONFIG if is_getattr else DICT)
            literal = _literal(default) if default is not None else _NONE
            if has_default and literal is not _NONE:
                use = found.at(path)
                use.default, use.has_default = literal, True
                use.optional = use.optional or literal is None

    def _holds(self, node: ast.Attribute) -> bool:
        """Whether ``node`` is a name for a path (``self.x`` bound, ``....hf_config``), not a read."""
        scope = self.scope[node]
        if node.attr in CONFIG_HOLDERS:
            return True
        return (
            isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and scope.klass is not None
            and (scope.klass, node.attr) in self.bound
        )

    def _arithmetic(self, found: Uses, parent: ast.BinOp | ast.AugAssign, node: ast.AST, path: Path) -> None:
        if isinstance(parent.op, ast.FloorDiv | ast.Mod | ast.LShift | ast.RShift):
            found.add(path, INT)
            return
        if isinstance(parent, ast.BinOp):
            other: ast.AST = parent.right if parent.left is node else parent.left
        else:
            other = parent.target if parent.value is node else parent.value
        if not isinstance(other, ast.Constant) or isinstance(other.value, bool):
            return
        if isinstance(other.value, int) or isinstance(parent.op, ast.Pow):
            found.add(path, NUMBER)  # ``n ** 0.5``: a number whatever the exponent
        elif isinstance(other.value, float):
            found.add(path, FLOAT)

    def _compared(self, found: Uses, compare: ast.Compare, node: ast.AST, path: Path) -> None:
        others = [compare.left, *compare.comparators]
        for other, op in zip([o for o in others if o is not node], compare.ops):
            if isinstance(op, ast.IsNot) and _is_none(other) and self._asserted(compare):
                found.at(path).asserted = True  # ``assert x is not None``: a None fails
                continue
            if isinstance(op, ast.Is | ast.IsNot):
                found.at(path).optional = True  # ``is None``: optional, nothing about its kind
                continue
            values = other.elts if isinstance(other, ast.Tuple | ast.List | ast.Set) else [other]
            for value in values:
                if not isinstance(value, ast.Constant):
                    continue
                if isinstance(value.value, bool) or value.value is None:
                    continue
                if isinstance(value.value, str):
                    found.add(path, STR)
                    if value.value not in found.at(path).literals:
                        found.at(path).literals.append(value.value)
                elif isinstance(value.value, int):
                    found.add(path, NUMBER)
                elif isinstance(value.value, float):
                    found.add(path, FLOAT)

    def _argument(self, found: Uses, call: ast.Call, node: ast.AST, path: Path) -> None:
        func = call.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name == "range":
            found.add(path, INT)
        elif name in CONVERSIONS:
            found.add(path, CONVERSIONS[name])
        elif name in SEQUENCE_CALLS:
            found.add(path, LIST)
        elif name is not None and name.endswith(DIMENSION_CALLS) and node in call.args[:2]:
            found.add(path, INT)
        for param, argument in self._arguments(call):
            if argument is not node:
                continue
            kind = _annotated(param.annotation)
            if kind is not None:
                found.add(path, kind)
            literal = _literal(param.default) if param.default is not None else _NONE
            if literal is not _NONE and literal is not None:
                found.at(path).defaults.append(literal)
            if param.name not in found.at(path).params:
                found.at(path).params.append(param.name)
            if literal is None or _takes_none(param.annotation):
                found.at(path).optional = True


_NONE = object()


def _literal(node: Any) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NONE


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _expression(text: str | None) -> ast.AST | None:
    if text is None:
        return None
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError:
        return None


def _annotated(annotation: Any) -> str | None:
    """The kind an annotation says (``X | None`` and ``Optional[X]`` say X's); None for others."""
    if annotation is None:
        return None
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = _expression(annotation.value)
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        sides = [s for s in (annotation.left, annotation.right) if not _is_none(s)]
        return _annotated(sides[0]) if len(sides) == 1 else None
    if isinstance(annotation, ast.Subscript):
        base = _dotted(annotation.value)
        if base in ("Optional", "typing.Optional"):
            return _annotated(annotation.slice)
        return ANNOTATIONS.get((base or "").rpartition(".")[2]) if base else None
    name = _dotted(annotation) if annotation is not None else None
    return ANNOTATIONS.get(name.rpartition(".")[2]) if name else None


def _takes_none(annotation: Any) -> bool:
    """Whether an annotation admits None (``X | None``, ``Optional[X]``)."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = _expression(annotation.value)
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _is_none(annotation.left) or _is_none(annotation.right) or _takes_none(annotation.left)
    if isinstance(annotation, ast.Subscript):
        return _dotted(annotation.value) in ("Optional", "typing.Optional")
    return False


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None
