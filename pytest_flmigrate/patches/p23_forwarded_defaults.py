"""P23: a None default forwarded to a pinned base method that lacks the keyword is dropped.

What: in an override that forwards its own optional parameter to the pinned base's method under
a keyword the pin's method does not take, the keyword goes (``PatchContext.forwarded_defaults``
lists each class, method and keyword step 4 proved it for)::

    class MistralModel(LlamaModel):
        def forward(self, input_ids, positions, intermediate_tensors, inputs_embeds=None,
                    t_cond=None, **extra_layer_kwargs):
            return super().forward(input_ids, positions, intermediate_tensors, inputs_embeds,
                                   t_cond=t_cond, **extra_layer_kwargs)
    # becomes
            return super().forward(input_ids, positions, intermediate_tensors, inputs_embeds,
                                   **extra_layer_kwargs)

One count per dropped keyword.

Why: signature drift. Upstream's base takes the keyword only through
``**kwargs`` and hands it on (``LlamaModel.forward`` passes ``t_cond`` to every layer); the pin's
base takes neither. Step 4 (:mod:`pytest_flmigrate.autofix.planner`) proposes a drop only when it
keeps behaviour: the override's parameter defaults to None; the pin calls the method through its
base's signature, which lacks the keyword, so the pin never supplies it and its value is always
None; and in the migrated file every function taking the keyword defaults it to None and every
call passing it forwards such a parameter (so no receiver sees anything but its own default).
Backporting upstream's base (P16) comes first; this is for bases whose copy step 4 refuses
(``LlamaModel``: its upstream weight mapper and Eagle mixin do not fit the pin).

When: pins where step 4 found such a call (any pin: the cases come from comparing the trees).
"""

from __future__ import annotations

import libcst as cst

from .base import PatchContext, PatchTransformer
from .syntax import drop_items

ID = "P23"
NAME = "forwarded-defaults"
PINNED = ">=0"


def relevant(source: str, context: PatchContext) -> bool:
    return bool(context.forwarded_defaults.get(context.module))


class Transformer(PatchTransformer):
    def __init__(self, context: PatchContext) -> None:
        super().__init__(context)
        self._drops = context.forwarded_defaults.get(context.module, frozenset())
        self._where: list[str] = []  # enclosing class, then method

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._where.append(node.name.value)

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        self._where.pop()
        return updated_node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._where.append(node.name.value)

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.FunctionDef:
        self._where.pop()
        return updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        if len(self._where) != 2 or not _super_call(updated_node, self._where[1]):
            return updated_node
        cls, method = self._where
        drop = {
            index
            for index, arg in enumerate(updated_node.args)
            if arg.keyword is not None
            and (cls, method, arg.keyword.value) in self._drops
            and isinstance(arg.value, cst.Name)
            and arg.value.value == arg.keyword.value
        }
        if not drop:
            return updated_node
        self.count += len(drop)
        return updated_node.with_changes(args=drop_items(list(updated_node.args), drop))


def _super_call(call: cst.Call, method: str) -> bool:
    """``super().method(...)``."""
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value == method
        and isinstance(func.value, cst.Call)
        and isinstance(func.value.func, cst.Name)
        and func.value.func.value == "super"
    )
