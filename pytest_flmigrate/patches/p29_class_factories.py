"""P29: factory classmethods upstream added to pinned classes become the pin's construction.

What: a call ``Owner.method(a, ...)`` of a factory listed in ``FACTORIES`` (``Owner`` imported from
one of the entry's modules), each argument a name or attribute chain, becomes the pin's spelling
of the same construction; the names it needs are imported when the file lacks them::

    from vllm.model_executor.layers.pooler import DispatchPooler
    self.pooler = DispatchPooler.for_embedding(pooler_config)
    # becomes
    from vllm.model_executor.layers.pooler import DispatchPooler
    from vllm.model_executor.layers.pooler import Pooler
    self.pooler = DispatchPooler({"token_embed": Pooler.for_token_embed(pooler_config), "embed": Pooler.for_embed(pooler_config)})

One count per call. Other shapes (keywords, ``*args``, an argument computed by a call) are left
alone; step 6 reports them.

Why: upstream (0.31+) builds its poolers with factory functions and gave ``DispatchPooler``
classmethods assembling the per-task dispatch from them; the pin's ``DispatchPooler`` takes the
same mapping of task to pooler, built by the pin's ``Pooler`` factories for the same tasks
(``Pooler.for_token_embed``: the token pooling ``pooling_type`` selects, with the token embedding
head; ``Pooler.for_embed``: the sequence pooling it selects, with the embedding head). Each
entry's ``why`` says why the pin's construction keeps behaviour; both trees are checked
(tests/integration): upstream's classmethod builds that very mapping, the pin's class lacks the
classmethod and has the factories the spelling calls.

When: pins of the 0.13 line (the factories were checked on vLLM 0.13.0).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from .base import PatchContext, PatchTransformer
from .imports import from_imports, with_imports
from .syntax import dotted_name

ID = "P29"
NAME = "class-factories"
PINNED = ">=0.13,<0.14"  # checked on vLLM 0.13.0


@dataclass(frozen=True)
class Factory:
    """``owner.method(<arguments>)`` -> ``pinned`` (``{owner}`` the local name of the class,
    ``{<argument>}`` each argument's code), needing ``imports`` ((module, name) bound in the file)."""

    owner: str
    modules: tuple[str, ...]
    method: str
    arguments: tuple[str, ...]
    pinned: str
    imports: tuple[tuple[str, str], ...]
    why: str


_POOLER = "vllm.model_executor.layers.pooler"
FACTORIES: tuple[Factory, ...] = (
    Factory(
        owner="DispatchPooler",
        modules=(_POOLER, f"{_POOLER}.special"),
        method="for_embedding",
        arguments=("pooler_config",),
        pinned=(
            '{owner}({{"token_embed": Pooler.for_token_embed({pooler_config}), '
            '"embed": Pooler.for_embed({pooler_config})}})'
        ),
        imports=((_POOLER, "Pooler"),),
        why=(
            "upstream's classmethod is cls({'token_embed': pooler_for_token_embed(config), 'embed': "
            "pooler_for_embed(config)}); the pin's factories for the same two tasks are Pooler.for_token_embed "
            "and Pooler.for_embed (pooling chosen by the config's pooling type, embedding heads applying the "
            "sentence-transformers projector, the requested dimensions and normalisation)"
        ),
    ),
)


def relevant(source: str, context: PatchContext) -> bool:
    return any(f".{factory.method}(" in source for factory in FACTORIES)


def _imports(module: cst.Module, package: str) -> tuple[dict[str, str], set[str]]:
    """(local name -> listed owner imported from its modules, every name the imports bind)."""
    owners: dict[str, str] = {}
    bound: set[str] = set()
    for origin, name, local in from_imports(module, package):
        bound.add(local)
        if any(f.owner == name and origin in f.modules for f in FACTORIES):
            owners[local] = name
    return owners, bound


class Transformer(PatchTransformer):
    def visit_Module(self, node: cst.Module) -> None:
        self._owners, self._bound = _imports(node, self.context.package)
        self._needed: dict[tuple[str, str], None] = {}

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        func = updated_node.func
        if not (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)):
            return updated_node
        owner = self._owners.get(func.value.value)
        factory = next((f for f in FACTORIES if f.owner == owner and f.method == func.attr.value), None)
        if factory is None:
            return updated_node
        args = list(updated_node.args)
        if len(args) != len(factory.arguments) or any(arg.keyword or arg.star for arg in args):
            return updated_node
        if not all(dotted_name(arg.value) for arg in args):
            return updated_node
        code = {name: dotted_name(arg.value) for name, arg in zip(factory.arguments, args)}
        self.count += 1
        for needed in factory.imports:
            if needed[1] not in self._bound:
                self._needed[needed] = None
        return cst.parse_expression(factory.pinned.format(owner=func.value.value, **code))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        return with_imports(updated_node, self._needed)
