"""P31: transformers 5 processors copied for a transformers 4 pin lose their doc-only decorators and declare their parts.

What: in a module copied from transformers 5 (a backport into ``vllm_fl/compat/transformers/``),
the decorators of ``DOC_ONLY_DECORATORS`` are dropped wherever they stand (classes, functions,
methods), with their imports once unused; a ``ProcessorMixin`` subclass that declares no
``attributes`` gets transformers 4's class attributes, from its ``__init__`` parameters::

    @requires(backends=("torch",))
    @auto_docstring
    class GlmAsrProcessor(ProcessorMixin):
        def __init__(self, feature_extractor, tokenizer, chat_template=None, audio_token="<|pad|>"):
    # becomes
    class GlmAsrProcessor(ProcessorMixin):
        attributes = ["feature_extractor", "tokenizer"]
        feature_extractor_class = "AutoFeatureExtractor"
        tokenizer_class = "AutoTokenizer"

        def __init__(self, feature_extractor, tokenizer, chat_template=None, audio_token="<|pad|>"):

One count per decorator dropped and per class given its attributes.

Why: each decorator of ``DOC_ONLY_DECORATORS`` has no effect on what the object does (each entry
says what it does in transformers 5.19's source), and ``auto_docstring`` of 4.x expects the model
classes it documents. transformers 5's ``ProcessorMixin`` finds a processor's parts in its
``__init__`` signature (``get_attributes``: each parameter naming a modality) and loads each with
its Auto class; 4.57's reads the class attributes ``attributes`` and ``<part>_class`` (a class name
it looks up in ``transformers``) to check the parts given and to load them. ``PARTS`` spells each
part the way 5.x loads it: the Auto class of its modality (4.57 checks an Auto class's part against
the base class, ``AUTO_TO_BASE_CLASS_MAPPING``). A part 4.57 has no attribute for
(``audio_processor``, a second ``image_processor``) is refused by the backport
(:func:`unsupported_parts`), which also refuses copies relying on 5.x ``ProcessorMixin`` hooks the
pin's lacks.

When: the pin runs a transformers 4 and step 4 backports a transformers 5 module (a processor,
feature extractor or image processor a migrated file imports) that the pinned transformers lacks.
"""

from __future__ import annotations

import ast

import libcst as cst
import libcst.matchers as m

from .base import TRANSFORMERS_5, PatchContext, PatchTransformer
from .syntax import decorator_name as cst_decorator_name
from .syntax import drop_items

ID = "P31"
NAME = "transformers5-processors"
PINNED = ">=0"  # any pin: the transformers it runs with decides (relevant())

DOC_ONLY_DECORATORS: dict[str, str] = {
    "auto_docstring": "builds the object's __doc__ from its signature and returns the object itself",
    "requires": (
        "records the backends a class needs (cls.__backends, read only to build lazy import errors); on a "
        "function it checks them before each call, and the pin's vLLM env has torch, the backend these name"
    ),
}
"""Decorators of transformers 5 with no effect on behaviour at the pin -> what they do there."""

PROCESSOR_MIXIN = "ProcessorMixin"
PARTS: dict[str, str] = {
    "tokenizer": "AutoTokenizer",
    "image_processor": "AutoImageProcessor",
    "video_processor": "AutoVideoProcessor",
    "feature_extractor": "AutoFeatureExtractor",
}
"""The parts transformers 4.57's ``ProcessorMixin`` has attributes for -> the class name it loads
and checks each with (the Auto class transformers 5 loads it with)."""
MODALITIES = ("image_processor", "video_processor", "feature_extractor", "audio_processor", "tokenizer")
"""What a transformers 5 ``__init__`` parameter's name must contain to be a part (``get_attributes``)."""


def relevant(source: str, context: PatchContext) -> bool:
    """Only modules copied from transformers, when the pin runs a transformers 4."""
    return (
        context.pinned_transformers < TRANSFORMERS_5
        and context.module.split(".")[0] == "transformers"
        and (PROCESSOR_MIXIN in source or any(name in source for name in DOC_ONLY_DECORATORS))
    )


def decorator_name(expression: ast.expr) -> str:
    """The last dotted part of a decorator (``requires`` for ``@import_utils.requires(...)``)."""
    target = expression.func if isinstance(expression, ast.Call) else expression
    return ast.unparse(target).rsplit(".", 1)[-1]


def processor_parts(node: ast.ClassDef) -> list[str] | None:
    """The parts transformers 5 infers for a ``ProcessorMixin`` subclass (its ``__init__``
    parameters naming a modality, ``audio_tokenizer`` aside), or None when 4.x's class attributes
    are not needed: not such a subclass, it declares ``attributes`` itself, or has no ``__init__``."""
    if not any(_last(base) == PROCESSOR_MIXIN for base in node.bases):
        return None
    init = None
    for statement in node.body:
        if isinstance(statement, ast.Assign) and any(getattr(t, "id", None) == "attributes" for t in statement.targets):
            return None
        if isinstance(statement, ast.FunctionDef) and statement.name == "__init__":
            init = statement
    if init is None:
        return None
    arguments = [*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs][1:]
    return [
        a.arg for a in arguments if a.arg != "audio_tokenizer" and any(modality in a.arg for modality in MODALITIES)
    ]


def unsupported_parts(node: ast.ClassDef) -> str | None:
    """Why P31 cannot declare a processor's parts for transformers 4.57, or None."""
    parts = processor_parts(node)
    other = [part for part in parts or () if part not in PARTS]
    if not other:
        return None
    return (
        f"{node.name} takes the part {other[0]}, which transformers 4's ProcessorMixin has no attribute for "
        f"(it knows {', '.join(PARTS)})"
    )


def _last(expression: ast.expr) -> str:
    return ast.unparse(expression).rsplit(".", 1)[-1]


class Transformer(PatchTransformer):
    def __init__(self, context: PatchContext) -> None:
        super().__init__(context)
        self.dropped: set[str] = set()

    def _without_doc_only(self, decorators) -> list[cst.Decorator]:
        kept = []
        for decorator in decorators:
            name = cst_decorator_name(decorator)
            if name in DOC_ONLY_DECORATORS:
                self.dropped.add(name)
                self.count += 1
            else:
                kept.append(decorator)
        return kept

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.FunctionDef:
        kept = self._without_doc_only(updated_node.decorators)
        if len(kept) == len(updated_node.decorators):
            return updated_node
        return updated_node.with_changes(decorators=kept)  # the definition owns the lines above them

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        kept = self._without_doc_only(updated_node.decorators)
        if len(kept) != len(updated_node.decorators):
            updated_node = updated_node.with_changes(decorators=kept)
        parsed = ast.parse(cst.Module(body=[original_node.with_changes(decorators=[])]).code).body[0]
        parts = processor_parts(parsed) if isinstance(parsed, ast.ClassDef) else None
        if (
            not parts
            or any(part not in PARTS for part in parts)
            or not isinstance(updated_node.body, cst.IndentedBlock)
        ):
            return updated_node
        self.count += 1
        names = ", ".join(f'"{part}"' for part in parts)
        lines = [f"attributes = [{names}]\n", *(f'{part}_class = "{PARTS[part]}"\n' for part in parts)]
        declared = [cst.parse_statement(line) for line in lines]
        body = list(updated_node.body.body)
        at = 1 if body and m.matches(body[0], m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString())])) else 0
        blank = cst.EmptyLine(indent=False)
        if at:  # after the docstring, one blank line
            declared[0] = declared[0].with_changes(leading_lines=[blank])
        if at < len(body) and not getattr(body[at], "leading_lines", ()):  # and one before what follows
            body[at] = body[at].with_changes(leading_lines=[blank])
        body[at:at] = declared
        return updated_node.with_changes(body=updated_node.body.with_changes(body=body))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not self.dropped:
            return updated_node
        used = {
            node.value
            for statement in updated_node.body
            if not m.matches(statement, m.SimpleStatementLine(body=[m.ImportFrom() | m.Import()]))
            for node in m.findall(statement, m.Name())
            if isinstance(node, cst.Name)
        }
        unused = self.dropped - used
        body = [kept for statement in updated_node.body if (kept := _without_names(statement, unused)) is not None]
        return updated_node.with_changes(body=body)


def _without_names(statement: cst.BaseStatement, names: set[str]) -> cst.BaseStatement | None:
    """An import statement without the unaliased ``names`` it imports (None when nothing is left)."""
    node = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1 else None
    if not isinstance(node, cst.ImportFrom) or isinstance(node.names, cst.ImportStar):
        return statement
    drop = {
        index
        for index, alias in enumerate(node.names)
        if alias.asname is None and isinstance(alias.name, cst.Name) and alias.name.value in names
    }
    if not drop:
        return statement
    kept = drop_items(node.names, drop)
    if not kept:
        return None
    if node.lpar is None and isinstance(kept[-1].comma, cst.Comma):
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return statement.with_changes(body=[node.with_changes(names=kept)])
