"""P34: class attributes read at import that the pin's class lacks become the pin's value, or step 4 refuses.

What: a read ``Owner.member`` at import time (a module's or a class body's code, not a function's)
of a class imported from vLLM, where upstream's class has the member and the pin's (with its
bases) does not, is certain to fail when the migrated module is imported
(``AttributeError: type object 'Qwen3ForCausalLM' has no attribute 'hf_to_vllm_mapper'``). Step 4
compares the trees for every such read (:func:`reads`): where an entry of ``MEMBERS`` proves the
pin's value of the same thing, the read becomes it (``PatchContext.import_time_members``); any
other read refuses the migration with its line, before anything is written::

    class JinaEmbeddingsV5DecoderModel(Qwen3ForCausalLM, VllmModelForPooling):
        hf_to_vllm_mapper = Qwen3ForCausalLM.hf_to_vllm_mapper | WeightsMapper(orig_to_new_prefix={"": "model."})
    # becomes
        hf_to_vllm_mapper = WeightsMapper() | WeightsMapper(orig_to_new_prefix={"": "model."})

One count per read rewritten (reads inside functions too: the same value). ``WeightsMapper`` is
imported from ``vllm.model_executor.models.utils`` when the file does not bind it.

Why: ``hf_to_vllm_mapper``: upstream 0.31+ moved the stacking of ``q/k/v_proj`` into ``qkv_proj``
and ``gate/up_proj`` into ``gate_up_proj`` from each model's ``load_weights`` into a class-level
mapper holding only ``orig_to_new_stacked`` (P21's why). A pinned class without a mapper loads
checkpoint names as they are and stacks them in its own ``load_weights``, so a subclass combining
upstream's mapper with its own renames maps names the pin's way with the empty mapper: the pin's
loader then stacks what upstream's mapper would have. Step 4 checks this on the trees for every
read: upstream's value, followed through the class attributes it is built from, is
``WeightsMapper(orig_to_new_stacked=...)`` (or a ``|`` of such), and the pinned class of each
class holding such a mapper upstream has a ``load_weights`` naming every stacked checkpoint
projection. A mapper with renames of its own, or any member without an entry, refuses.

When: keyed by the trees, any pin (nothing is read or rewritten where the pin's class has the
member).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from pytest_flmigrate.index.symbols import absolute_module

from .base import PatchContext, PatchTransformer
from .imports import from_imports, with_imports
from .translation import Refused

if TYPE_CHECKING:
    from pytest_flmigrate.index.resolve import Resolver

ID = "P34"
NAME = "import-time-members"
PINNED = ">=0"  # keyed by the trees: step 4 decides each read (reads)

Key = tuple[str, str, str]
"""(module the file imports the class from, class name, member)."""


@dataclass(frozen=True)
class ImportTimeMember:
    """``Owner.<member>`` -> ``pinned`` (needing ``imports``), when ``proof(upstream, pinned,
    upstream class, pinned class)`` finds nothing wrong (None) on the trees."""

    member: str
    pinned: str
    imports: tuple[tuple[str, str], ...]
    proof: Callable[[Resolver, Resolver, tuple[str, str], tuple[str, str]], str | None]
    why: str


MAPPER = "WeightsMapper"
UTILS = "vllm.model_executor.models.utils"
STACKED = "orig_to_new_stacked"
MAX_DEPTH = 8


def _assigned(resolver: Resolver, module: str, cls: str, member: str) -> ast.expr | None:
    """The value ``member`` is assigned in the body of class ``module.cls``."""
    node = resolver.class_node(module, cls)
    for statement in node.body if node is not None else ():
        if isinstance(statement, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == member for t in statement.targets
        ):
            return statement.value
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and statement.target.id == member
        ):
            return statement.value
    return None


def stacked_mappers(
    upstream: Resolver, module: str, cls: str, member: str, depth: int = 0
) -> tuple[dict[tuple[str, str], frozenset[str]], str | None]:
    """The classes whose ``member`` upstream builds as ``WeightsMapper(orig_to_new_stacked={...})``
    that ``module.cls``'s ``member`` is made of ((module, class) -> the stacked checkpoint names),
    and why it is something else (None: only such mappers)."""
    found = upstream.find_member(module, cls, member)
    if found is None or found.kind != "attribute" or depth > MAX_DEPTH:
        return {}, f"upstream's {cls}.{member} is not a class attribute to follow"
    value = _assigned(upstream, found.owner_module, found.owner, member)
    if value is None:
        return {}, f"upstream's {found.owner}.{member} has no value to follow"
    mappers: dict[tuple[str, str], frozenset[str]] = {}
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            todo += [node.left, node.right]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr == member:
            other = upstream.resolve(found.owner_module, node.value.id)
            if other is None or other.kind != "class":
                return {}, f"upstream's {found.owner}.{member} reads {node.value.id}, not a class"
            more, why = stacked_mappers(upstream, other.module, other.name, member, depth + 1)
            if why:
                return {}, why
            mappers.update(more)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == MAPPER:
            names = [keyword.arg for keyword in node.keywords]
            stacked = node.keywords[0].value if names == [STACKED] else None
            if node.args or not isinstance(stacked, ast.Dict):
                return {}, (
                    f"upstream's {found.owner}.{member} is {ast.unparse(node)[:80]}: a mapper with more than {STACKED}"
                )
            keys = frozenset(
                key.value.lstrip(".")
                for key in stacked.keys
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            )
            if len(keys) != len(stacked.keys):
                return {}, f"upstream's {found.owner}.{member} stacks names that are not literals"
            mappers[(found.owner_module, found.owner)] = keys
        else:
            return {}, f"upstream's {found.owner}.{member} is {ast.unparse(node)[:80]}, not a mapper to follow"
    return mappers, None


def _stacked_only(upstream: Resolver, pinned: Resolver, up: tuple[str, str], pin: tuple[str, str]) -> str | None:
    """Why the empty mapper is not the pin's spelling of upstream's ``hf_to_vllm_mapper``, or None."""
    mappers, why = stacked_mappers(upstream, *up, "hf_to_vllm_mapper")
    if why:
        return why
    for (module, cls), names in sorted(mappers.items()):
        found = pinned.resolve(module, cls)
        loader = pinned.find_member(found.module, found.name, "load_weights") if found is not None else None
        method = _method(pinned, loader.owner_module, loader.owner, "load_weights") if loader is not None else None
        if loader is None or method is None:
            return f"the pin's {module}.{cls} has no load_weights that stacks {', '.join(sorted(names))} itself"
        strings = {
            n.value.lstrip(".") for n in ast.walk(method) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }
        missing = sorted(names - strings)
        if missing:
            return f"the pin's {loader.owner}.load_weights does not stack {', '.join(missing)}"
    return None


def _method(resolver: Resolver, module: str, cls: str, name: str) -> ast.FunctionDef | None:
    node = resolver.class_node(module, cls)
    return next(
        (s for s in (node.body if node is not None else ()) if isinstance(s, ast.FunctionDef) and s.name == name),
        None,
    )


MEMBERS: tuple[ImportTimeMember, ...] = (
    ImportTimeMember(
        member="hf_to_vllm_mapper",
        pinned=f"{MAPPER}()",
        imports=((UTILS, MAPPER),),
        proof=_stacked_only,
        why=(
            "upstream's mapper only stacks projections (orig_to_new_stacked), which the pin's class "
            "does in its own load_weights; a pinned class without a mapper maps no name"
        ),
    ),
)
BY_MEMBER = {entry.member: entry for entry in MEMBERS}


@dataclass(frozen=True)
class Read:
    """One import-time read ``local.member`` of a class imported as ``(module, name)``."""

    module: str
    name: str
    local: str
    member: str
    line: int


def import_time_reads(source: str, package: str) -> Iterator[Read]:
    """Every ``Name.attr`` read at import time (module and class bodies, decorators, bases,
    defaults) of a name the file imports with ``from X import``."""
    tree = ast.parse(source)
    imported: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            origin = absolute_module(package, node.level, node.module)
            for alias in node.names:
                if alias.name != "*":
                    imported[alias.asname or alias.name] = (origin, alias.name)

    def visit(node: ast.AST) -> Iterator[Read]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for part in (*node.decorator_list, *node.args.defaults, *node.args.kw_defaults):
                if part is not None:
                    yield from visit(part)
            return
        if isinstance(node, ast.Lambda):
            return
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Load)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported
        ):
            module, name = imported[node.value.id]
            yield Read(module, name, node.value.id, node.attr, node.lineno)
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(tree)


def reads(
    source: str,
    package: str,
    upstream: Resolver,
    pinned: Resolver,
    copied: Callable[[str, str], bool] = lambda module, name: False,
) -> tuple[dict[Key, str], Refused | None]:
    """Step 4's decision for one file: the import-time reads of members the pin's class lacks
    that an entry translates (key -> the pin's expression), and the first one it does not (its
    line and why), or None. ``copied(module, name)``: the migration writes or backports that
    import (upstream's class, which has the member)."""
    translated: dict[Key, str] = {}
    for read in import_time_reads(source, package):
        key = (read.module, read.name, read.member)
        if key in translated or copied(read.module, read.name):
            continue
        pin = pinned.resolve(read.module, read.name) if pinned.has_module(read.module) else None
        if pin is None or pin.kind != "class" or pin.type_checking:
            continue
        if pinned.find_member(pin.module, pin.name, read.member) is not None:
            continue
        up = upstream.resolve(read.module, read.name)
        if up is None or up.kind != "class" or upstream.find_member(up.module, up.name, read.member) is None:
            continue
        lacks = f"{read.local}.{read.member} is read at import; the pin's {pin.module}.{pin.name} lacks it"
        entry = BY_MEMBER.get(read.member)
        if entry is None:
            return translated, Refused(read.line, f"{lacks} and no entry gives the pin's value")
        why = entry.proof(upstream, pinned, (up.module, up.name), (pin.module, pin.name))
        if why is not None:
            return translated, Refused(read.line, f"{lacks}, and {why}")
        translated[key] = entry.pinned
    return translated, None


def relevant(source: str, context: PatchContext) -> bool:
    return any(member in source for _, _, member in context.import_time_members)


class Transformer(PatchTransformer):
    def visit_Module(self, node: cst.Module) -> None:
        self._locals: dict[str, tuple[str, str]] = {}
        self._bound: set[str] = set()
        for origin, name, local in from_imports(node, self.context.package):
            self._bound.add(local)
            self._locals[local] = (origin, name)
        self._needed: dict[tuple[str, str], None] = {}
        self._stores: set[int] = set()

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._stores.add(id(node.target))

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        if id(original_node) in self._stores or not isinstance(updated_node.value, cst.Name):
            return updated_node
        imported = self._locals.get(updated_node.value.value)
        pinned = (
            self.context.import_time_members.get((imported[0], imported[1], updated_node.attr.value))
            if imported
            else None
        )
        if pinned is None:
            return updated_node
        self.count += 1
        entry = BY_MEMBER[updated_node.attr.value]
        for needed in entry.imports:
            if needed[1] not in self._bound:
                self._needed[needed] = None
        return cst.parse_expression(pinned)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        return with_imports(updated_node, self._needed)
