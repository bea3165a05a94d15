"""P4: ``_mark_language_model`` / ``_mark_tower_model`` blocks become plain initialisation.

What: a language-model block is dedented in place (comments kept)::

    with self._mark_language_model(vllm_config):
        self.language_model = Qwen3_5ForCausalLM(vllm_config=vllm_config, prefix=...)
    # becomes
    self.language_model = Qwen3_5ForCausalLM(vllm_config=vllm_config, prefix=...)

A tower block runs only when one of its modalities is enabled, and otherwise sets every
attribute it would have assigned to None, the pin's convention (0.13.0's Qwen3-VL does this)::

    with self._mark_tower_model(vllm_config, {"image", "video"}):
        self.visual = Qwen3_VisionTransformer(config.vision_config, ...)
    # becomes
    if multimodal_config.get_limit_per_prompt("image") or multimodal_config.get_limit_per_prompt("video"):
        self.visual = Qwen3_VisionTransformer(config.vision_config, ...)
    else:
        self.visual = None

The condition uses a local already bound to the multimodal config (``x = ....get_multimodal_config()``
or ``x = ....multimodal_config`` earlier at the top of the function), else
``vllm_config.model_config.multimodal_config`` spelled from the block's first argument. Left
alone (one of them makes the rewrite unsafe): a ``with`` holding other items or ``as``; a first
argument that is not a plain name; modalities that are not a string literal or a literal set of
them; any keyword argument (``targets=`` marks descendants by type, which plain attributes cannot
express); a tower block binding a local name that the function uses outside it (skipping the
block would leave it unbound). One count per block.

Why: 0.13.0 has neither context manager. Upstream, ``_mark_language_model`` only records the
children (for ``--mm-encoder-only``, which 0.13.0 lacks), so its body runs as is;
``_mark_tower_model`` swaps the children for placeholders when every modality's
``limit_per_prompt`` is 0, which 0.13.0 models express as ``None`` attributes. What upstream's
interface does with the recorded children, the pin's leaves to the class: upstream's default
``get_language_model`` returns the child the block assigned, the pin's ``SupportsMultiModal``
declares it without a body (``None``: the pin's ``embed_input_ids`` then fails on the first
request). A class on that default (no ``get_language_model`` of its own, only ``nn.Module`` and
``Supports*`` bases) whose language block assigns one ``self.X`` gets
``def get_language_model(self): return self.X``.

When: multimodal models (vision / audio towers) and their subclasses, e.g. Qwen3.5, Qwen3-VL,
Kimi-K2.5, Gemma 3. Adding ``multimodal_config=`` to a tower constructor whose 0.13.0 signature
wants it (catalog P4's note) is a signature change, not part of this rewrite.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from .base import PatchContext, PatchTransformer

ID = "P4"
NAME = "mark-model-context"
PINNED = "<0.15"  # the pins lacking the API: 0.13.0 does, 0.15.0 and later have it

LANGUAGE = "_mark_language_model"
TOWER = "_mark_tower_model"


@dataclass
class _Scope:
    function: cst.FunctionDef
    multimodal_config: cst.Name | None = None


def relevant(source: str, context: PatchContext) -> bool:
    """Only files spelling one of the context managers can need this patch."""
    return TOWER in source or LANGUAGE in source


class Transformer(PatchTransformer):
    def __init__(self, context: PatchContext) -> None:
        super().__init__(context)
        self._scopes: list[_Scope] = []
        self._classes: list[set[str]] = []  # per class: the self attributes its language blocks assign

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(set())

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        marked = self._classes.pop()
        if len(marked) != 1 or not _default_language_model(updated_node):
            return updated_node
        (attribute,) = marked
        method = cst.parse_statement(f"def {GETTER}(self):\n    return self.{attribute}\n")
        body = updated_node.body
        assert isinstance(body, cst.IndentedBlock)
        return updated_node.with_changes(
            body=body.with_changes(body=[*body.body, method.with_changes(leading_lines=[cst.EmptyLine(indent=False)])])
        )

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(_Scope(node))

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.FunctionDef:
        self._scopes.pop()
        return updated_node

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        scope = self._scopes[-1] if self._scopes else None
        if scope and node in scope.function.body.body:
            scope.multimodal_config = _multimodal_config_name(node) or scope.multimodal_config

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.With | cst.If:
        shape = _marked(updated_node, TOWER)
        if shape is None or not self._scopes:
            return updated_node
        receiver, config, modalities = shape
        scope = self._scopes[-1]
        if _binds_used_locals(original_node, scope.function):
            return updated_node
        self.count += 1
        return _tower_if(updated_node, receiver, config, modalities, scope.multimodal_config)

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body: list[cst.BaseStatement] = []
        carried: list[cst.EmptyLine] = []  # comments closing a dedented block
        dedented = 0
        for statement in updated_node.body:
            if isinstance(statement, cst.With) and _marked(statement, LANGUAGE):
                dedented += 1
                inner, footer = _dedented(statement)
                if self._classes and self._scopes and _receiver(statement) == "self":
                    self._classes[-1].update(_self_attributes(inner))
                body.extend([_with_leading(inner[0], carried), *inner[1:]])
                carried = footer
            else:
                body.append(_with_leading(statement, carried))
                carried = []
        if not dedented:
            return updated_node
        self.count += dedented
        return updated_node.with_changes(body=body, footer=[*carried, *updated_node.footer])


GETTER = "get_language_model"
INTERFACE_BASES = ("nn.Module", "torch.nn.Module", "Module")
"""Bases that leave a class on upstream's default ``get_language_model`` (with the ``Supports*``
interfaces): a model class among the bases may override it."""


def _receiver(node: cst.With) -> str | None:
    call = node.items[0].item
    assert isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
    return call.func.value.value if isinstance(call.func.value, cst.Name) else None


def _self_attributes(statements: list[cst.BaseStatement]) -> set[str]:
    """The ``self.X`` the statements (a language block's body) assign."""
    found: set[str] = set()
    for statement in statements:
        for small in statement.body if isinstance(statement, cst.SimpleStatementLine) else ():
            targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else []
            if isinstance(small, cst.AnnAssign):
                targets = [small.target]
            for target in targets:
                if (
                    isinstance(target, cst.Attribute)
                    and isinstance(target.value, cst.Name)
                    and target.value.value == "self"
                ):
                    found.add(target.attr.value)
    return found


def _default_language_model(node: cst.ClassDef) -> bool:
    """Whether upstream's class gets ``get_language_model`` from upstream's interface default (which
    reads what ``_mark_language_model`` recorded): it defines none, and its bases are ``nn.Module``
    and the ``Supports*`` interfaces only, ``SupportsMultiModal`` (which declares it) among them."""
    body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
    if any(isinstance(s, cst.FunctionDef) and s.name.value == GETTER for s in body):
        return False
    names = [cst.Module(body=[]).code_for_node(base.value) for base in node.bases]
    interfaces = [name.rpartition(".")[2] for name in names]
    return "SupportsMultiModal" in interfaces and all(
        name in INTERFACE_BASES or interface.startswith("Supports") for name, interface in zip(names, interfaces)
    )


def _marked(node: cst.With, method: str) -> tuple[cst.Name, cst.Name, list[cst.SimpleString]] | None:
    """(receiver, first argument, modality literals) of ``with <receiver>.<method>(...):``."""
    if len(node.items) != 1 or node.items[0].asname or node.asynchronous:
        return None
    call = node.items[0].item
    if not (
        isinstance(call, cst.Call)
        and isinstance(call.func, cst.Attribute)
        and isinstance(call.func.value, cst.Name)
        and call.func.attr.value == method
        and all(arg.keyword is None and not arg.star for arg in call.args)
        and call.args
        and isinstance(call.args[0].value, cst.Name)
    ):
        return None
    if method == LANGUAGE:
        return (call.func.value, call.args[0].value, []) if len(call.args) == 1 else None
    if len(call.args) != 2:
        return None
    modalities = _modality_literals(call.args[1].value)
    return (call.func.value, call.args[0].value, modalities) if modalities else None


def _modality_literals(node: cst.BaseExpression) -> list[cst.SimpleString] | None:
    """The string literals of ``"image"`` or ``{"image", "video"}``, duplicates dropped."""
    elements: list[cst.BaseExpression] = [node] if isinstance(node, cst.SimpleString) else []
    if isinstance(node, cst.Set):
        elements = [element.value for element in node.elements]
        if any(isinstance(element, cst.StarredElement) for element in node.elements):
            return None
    strings = [e for e in elements if isinstance(e, cst.SimpleString) and isinstance(e.evaluated_value, str)]
    if not strings or len(strings) != len(elements):
        return None
    unique = {element.evaluated_value: element for element in reversed(strings)}
    return [unique[value] for value in dict.fromkeys(e.evaluated_value for e in strings)]


def _multimodal_config_name(line: cst.SimpleStatementLine) -> cst.Name | None:
    """``x`` for ``x = <...>.get_multimodal_config()`` or ``x = <...>.multimodal_config``."""
    if len(line.body) != 1 or not isinstance(line.body[0], cst.Assign):
        return None
    assign = line.body[0]
    value = assign.value
    if isinstance(value, cst.Call) and not value.args:
        value = value.func
        wanted = "get_multimodal_config"
    else:
        wanted = "multimodal_config"
    if (
        len(assign.targets) == 1
        and isinstance(assign.targets[0].target, cst.Name)
        and isinstance(value, cst.Attribute)
        and value.attr.value == wanted
    ):
        return cst.Name(assign.targets[0].target.value)
    return None


def _tower_if(
    node: cst.With,
    receiver: cst.Name,
    config: cst.Name,
    modalities: list[cst.SimpleString],
    multimodal_config: cst.Name | None,
) -> cst.If:
    source = multimodal_config.value if multimodal_config else f"{config.value}.model_config.multimodal_config"
    limits = [f"{source}.get_limit_per_prompt({literal.value})" for literal in modalities]
    test = limits[0] if len(limits) == 1 else "(\n    " + "\n    or ".join(limits) + "\n)"
    orelse = "".join(
        f"    {receiver.value}.{name} = None\n" for name in _assigned_attributes(node.body, receiver.value)
    )
    template = f"if {test}:\n    pass\n" + (f"else:\n{orelse}" if orelse else "")
    return cst.ensure_type(cst.parse_statement(template), cst.If).with_changes(
        body=node.body, leading_lines=node.leading_lines
    )


def _assigned_attributes(body: cst.BaseSuite, receiver: str) -> list[str]:
    """``x`` for every ``<receiver>.x = ...`` in ``body`` (nested blocks too), in order."""
    collector = _Bindings(receiver)
    body.visit(collector)
    return list(dict.fromkeys(collector.attributes))


def _binds_used_locals(node: cst.With, function: cst.FunctionDef) -> bool:
    """True when the block binds a local name that the function also mentions elsewhere."""
    bindings = _Bindings("")
    node.body.visit(bindings)
    if not bindings.names:
        return False
    outside = _NamesOutside(node)
    function.visit(outside)
    return bool(bindings.names & outside.names)


def _dedented(node: cst.With) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
    """The statements of ``node``'s block, its own leading lines and header comment on the
    first, and the comments that closed the block."""
    header = node.body.header if isinstance(node.body, cst.IndentedBlock) else None
    inner: list[cst.BaseStatement]
    if isinstance(node.body, cst.IndentedBlock):
        inner, footer = list(node.body.body), list(node.body.footer)
    else:
        suite = cst.ensure_type(node.body, cst.SimpleStatementSuite)
        inner = [cst.SimpleStatementLine(body=suite.body, trailing_whitespace=suite.trailing_whitespace)]
        footer = []
    lead = list(node.leading_lines)
    if header is not None and header.comment is not None:
        lead.append(cst.EmptyLine(comment=header.comment))
    return [_with_leading(inner[0], lead), *inner[1:]], footer


def _with_leading(statement: cst.BaseStatement, lines: list[cst.EmptyLine]) -> cst.BaseStatement:
    if not lines:
        return statement
    assert isinstance(statement, (cst.SimpleStatementLine, cst.BaseCompoundStatement))  # every statement
    return statement.with_changes(leading_lines=[*lines, *statement.leading_lines])


class _Bindings(cst.CSTVisitor):
    """Local names a block binds, and the attributes of ``receiver`` it assigns.

    Nested functions, classes and lambdas have scopes of their own and are skipped.
    """

    def __init__(self, receiver: str) -> None:
        super().__init__()
        self.receiver = receiver
        self.names: set[str] = set()
        self.attributes: list[str] = []

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._target(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._target(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name):
            self.names.add(node.target.value)

    def visit_For(self, node: cst.For) -> None:
        self._target(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._target(node.name)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._target(node.target)

    def visit_ImportAlias(self, node: cst.ImportAlias) -> None:
        if node.asname is None:
            self.names.add(_root_name(node.name))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.names.add(node.name.value)
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.names.add(node.name.value)
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def _target(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self.names.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._target(element.value)
        elif isinstance(target, cst.StarredElement):
            self._target(target.value)
        elif (
            isinstance(target, cst.Attribute)
            and isinstance(target.value, cst.Name)
            and target.value.value == self.receiver
        ):
            self.attributes.append(target.attr.value)


def _root_name(node: cst.BaseExpression) -> str:
    while isinstance(node, cst.Attribute):
        node = node.value
    return node.value if isinstance(node, cst.Name) else ""


class _NamesOutside(cst.CSTVisitor):
    """Every name mentioned in a function, except inside one excluded block."""

    def __init__(self, excluded: cst.With) -> None:
        super().__init__()
        self.excluded = excluded
        self.names: set[str] = set()

    def visit_With(self, node: cst.With) -> bool:
        return node is not self.excluded

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)
