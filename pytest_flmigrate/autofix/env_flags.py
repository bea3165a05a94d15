"""The ``vllm.envs`` flags upstream defines and the pin lacks, each with upstream's default.

Both trees' ``vllm/envs.py`` hold ``environment_variables``: flag name -> a getter (``lambda:
os.getenv("FLAG", "0")``, ``env_with_choices("FLAG", None, [...])``). :func:`missing_flags`
compares the two; a flag's default is what upstream's getter returns with the variable unset,
read statically (:func:`default_of`: literals, ``os.getenv``/``os.environ.get``,
``env_with_choices``, the conversions ``int``/``float``/``bool``/``str``, ``strip``/``lower``/
``upper``/``get``, comparisons and ``and``/``or``/``not``). A getter reading anything else (the
machine, the file system, a helper of upstream's) has no default the tool can know, and its flag is
left out. P25 (patches/p25_env_flags.py) points migrated code reading such a flag at the shim this
writes, ``vllm_fl/compat/envs.py`` (:func:`shim_text`).
"""

from __future__ import annotations

import ast
import operator
import pprint
from collections.abc import Mapping
from typing import Any

from pytest_flmigrate.index.resolve import Resolver

ENVS = "vllm.envs"
SHIM_MODULE = "vllm_fl.compat.envs"


class Unknown(Exception):
    """A getter whose value with the variable unset cannot be read statically."""


def getters(tree: ast.Module | None) -> dict[str, ast.expr]:
    """``environment_variables`` of a ``vllm/envs.py``: flag -> its getter's expression."""
    for node in tree.body if tree is not None else ():
        target: ast.expr
        value: ast.expr | None
        if isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "environment_variables" and isinstance(value, ast.Dict):
            return {
                key.value: item
                for key, item in zip(value.keys, value.values)
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            }
    return {}


def missing_flags(upstream: Resolver, pinned: Resolver) -> dict[str, Any]:
    """Flag -> upstream's default, for the flags upstream's ``vllm.envs`` defines and the pin's
    does not (those whose default cannot be read statically left out), in upstream's order."""
    theirs, ours = getters(upstream.module_tree(ENVS)), getters(pinned.module_tree(ENVS))
    found: dict[str, Any] = {}
    for flag, getter in theirs.items():
        if flag in ours:
            continue
        try:
            found[flag] = default_of(getter)
        except Unknown:
            continue
    return found


_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_CONVERSIONS = {"int": int, "float": float, "bool": bool, "str": str}
_METHODS = {"strip", "lower", "upper", "get"}


def default_of(getter: ast.expr) -> Any:
    """The getter's value with its variable unset; :class:`Unknown` when it cannot be read statically."""
    try:
        if isinstance(getter, ast.Lambda):
            return _value(getter.body)
        if isinstance(getter, ast.Call) and _name(getter.func) == "env_with_choices":
            return _argument(getter, 1, "default")
    except (AttributeError, TypeError, ValueError) as exc:  # upstream's getter fails too
        raise Unknown(ast.unparse(getter)) from exc
    raise Unknown(ast.unparse(getter))


def _value(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = [_value(item) for item in node.elts]
        return {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        return {_value(key): _value(value) for key, value in zip(node.keys, node.values)}  # type: ignore[arg-type]
    if isinstance(node, ast.Compare):
        left = _value(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = _value(right_node)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        values = [_value(value) for value in node.values]
        result = values[0]
        for value in values[1:]:
            result = (result and value) if isinstance(node.op, ast.And) else (result or value)
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _value(node.operand)
    if isinstance(node, ast.Call):
        return _call(node)
    raise Unknown(ast.unparse(node))


def _call(node: ast.Call) -> Any:
    name = _name(node.func)
    if name in ("os.getenv", "os.environ.get"):
        return _argument(node, 1, "default")
    if name in _CONVERSIONS and len(node.args) == 1 and not node.keywords:
        return _CONVERSIONS[name](_value(node.args[0]))
    if isinstance(node.func, ast.Attribute) and node.func.attr in _METHODS and not node.keywords:
        receiver = _value(node.func.value)
        return getattr(receiver, node.func.attr)(*(_value(arg) for arg in node.args))
    raise Unknown(ast.unparse(node))


def _argument(call: ast.Call, position: int, keyword: str) -> Any:
    """The value of a call's argument (None when absent, as ``os.getenv``'s default)."""
    if len(call.args) > position:
        return _value(call.args[position])
    for given in call.keywords:
        if given.arg == keyword:
            return _value(given.value)
    return None


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def shim_text(flags: Mapping[str, Any]) -> str:
    """``vllm_fl/compat/envs.py``: the pin's ``vllm.envs``, plus the flags it lacks at upstream's defaults."""
    table = pprint.pformat(dict(flags), sort_dicts=False, width=100)
    return f'''"""vllm.envs for migrated code: every flag of the pinned vLLM's vllm.envs, and the flags of
upstream vLLM's it lacks at upstream's defaults (the pin implements none of them).

Written by pytest-flmigrate step 4 (catalog P25) from comparing the two trees' vllm/envs.py.
"""

from typing import Any

import vllm.envs as _pinned

#: Upstream's default of each flag the pinned vllm.envs lacks.
UPSTREAM_DEFAULTS: dict[str, Any] = {table}


def __getattr__(name: str) -> Any:
    if name in UPSTREAM_DEFAULTS:
        return UPSTREAM_DEFAULTS[name]
    return getattr(_pinned, name)


def __dir__() -> list[str]:
    return sorted(set(dir(_pinned)) | set(UPSTREAM_DEFAULTS))
'''
