"""P17: call arguments the pin spells differently, rewritten where a table entry proves it safe.

What: a call of a function listed in ``RULES`` (imported from one of the entry's modules) gets
its keywords renamed, arguments equal to upstream's own default dropped, and the defaults the
pinned signature requires filled in; any other call shape is left alone (step 6 reports it)::

    @default_pooling_type(seq_pooling_type="CLS", tok_pooling_type="ALL")
    class XForEmbedding(nn.Module): ...
    # becomes
    @default_pooling_type(pooling_type="CLS")
    class XForEmbedding(nn.Module): ...

    @default_pooling_type(tok_pooling_type="ALL")   # -> @default_pooling_type(pooling_type="LAST")
    size = getattr_iter(config, names)               # -> getattr_iter(config, names, default=None)
    @support_torch_compile(dynamic_arg_dims=d, is_encoder=True)  # -> @support_torch_compile(dynamic_arg_dims=d)

One count per call.

Why: each entry is a signature change with an equivalent spelling in the pin, and its ``why``
says why the rewrite keeps behaviour; both signatures are checked against the real trees
(tests/integration). Entries are deliberately few: most signature changes upstream come with
new behaviour (``WeightsMapper(orig_to_new_regex=...)``, ``async_tensor_h2d(device=...)``,
``_embed_text_input_ids`` without ``handle_oov_mm_token``), and dropping those arguments would
change what the model does silently; they stay findings. (The catalog's example,
``SharedFusedMoE.make_expert_params_mapping(self, ...)``, no longer occurs upstream:
0.31-0.33 call ``fused_moe_make_expert_params_mapping(self, ...)``, a different callee.)

When: calls of the listed functions whose shape a rule covers, pins of the 0.13 line.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field

import libcst as cst

from pytest_flmigrate.index.symbols import absolute_module

from .base import PatchContext, PatchTransformer
from .imports import small_statements
from .syntax import append_args, dotted_name, drop_items, keyword_arg

ID = "P17"
NAME = "call-arguments"
PINNED = "<0.15"  # pins with the old signatures: 0.13.0; 0.15.0 and later take upstream's spelling


@dataclass(frozen=True)
class ArgumentRule:
    """How to call ``name`` (imported from one of ``modules``) the pin's way.

    rename:  upstream keyword -> pinned keyword
    drop_if: keyword -> the literal (upstream's default) for which the argument is dropped;
             any other value leaves the call alone
    fill:    keyword -> literal added when the call does not pass it (upstream's default,
             which the pinned signature requires explicitly)
    drop:    keywords dropped whatever their value (the ``why`` says why no value of them changes
             what the model computes at the pin)
    unless:  keywords that leave the call alone when present
    max_positional: calls passing more positional arguments are left alone
    pinned / upstream: ``module:function``, the two definitions the entry was checked against
    """

    name: str
    modules: tuple[str, ...]
    pinned: str
    upstream: str
    why: str
    rename: Mapping[str, str] = field(default_factory=dict)
    drop_if: Mapping[str, str] = field(default_factory=dict)
    fill: Mapping[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    max_positional: int = 0


RULES: tuple[ArgumentRule, ...] = (
    ArgumentRule(
        name="default_pooling_type",
        modules=("vllm.model_executor.models.interfaces_base",),
        pinned="vllm.model_executor.models.interfaces_base:default_pooling_type",
        upstream="vllm.model_executor.models.interfaces_base:default_pooling_type",
        rename={"seq_pooling_type": "pooling_type"},
        drop_if={"tok_pooling_type": '"ALL"'},
        fill={"pooling_type": '"LAST"'},
        why=(
            "the pin has one pooling type: sequence tasks pool with it, token tasks use "
            "AllPooler unless it is 'STEP' (Pooler.for_token_embed/for_token_classify). Upstream's "
            "seq_pooling_type is that type and tok_pooling_type='ALL' (its default) is the pin's "
            "token behaviour, so pooling_type=<seq type, default 'LAST'> is the same; a "
            "tok_pooling_type other than 'ALL' has no pinned spelling and is left alone"
        ),
    ),
    ArgumentRule(
        name="getattr_iter",
        modules=("vllm.config.utils",),
        pinned="vllm.config.utils:getattr_iter",
        upstream="vllm.config.utils:getattr_iter",
        fill={"default": "None"},
        unless=("default_factory",),
        max_positional=2,
        why=(
            "upstream made default optional (None) and added default_factory; the pin's body is "
            "the same loop returning default, so passing upstream's default None keeps it"
        ),
    ),
    ArgumentRule(
        name="support_torch_compile",
        modules=("vllm.compilation.decorators",),
        pinned="vllm.compilation.decorators:support_torch_compile",
        upstream="vllm.compilation.decorators:support_torch_compile",
        drop=("is_encoder",),
        why=(
            "is_encoder marks a multimodal encoder's compiled graph with a tag and cache prefix of its "
            "own (and its own CUDA graphs upstream); it changes how the encoder is compiled, not what it "
            "computes. The pin compiles encoders under the model's tag, as its own vision towers are "
            "(support_torch_compile(enable_if=should_torch_compile_mm_vit) without it)"
        ),
    ),
)
BY_NAME = {rule.name: rule for rule in RULES}


def relevant(source: str, context: PatchContext) -> bool:
    """Only files spelling a listed function can need this patch."""
    return any(rule.name in source for rule in RULES)


class Transformer(PatchTransformer):
    def visit_Module(self, node: cst.Module) -> None:
        # local name -> rule, for names imported from a rule's module
        self._bound: dict[str, ArgumentRule] = {}
        for statement in small_statements(node):
            if not isinstance(statement, cst.ImportFrom) or isinstance(statement.names, cst.ImportStar):
                continue
            module = dotted_name(statement.module)
            if statement.relative:
                module = absolute_module(self.context.package, len(statement.relative), module)
            for alias in statement.names:
                rule = BY_NAME.get(dotted_name(alias.name) or "")
                if rule is not None and module in rule.modules:
                    local = (
                        alias.asname.name.value
                        if alias.asname and isinstance(alias.asname.name, cst.Name)
                        else rule.name
                    )
                    self._bound[local] = rule

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        func = updated_node.func
        rule = self._bound.get(func.value) if isinstance(func, cst.Name) else None
        if rule is None:
            return updated_node
        rewritten = rewrite_call(updated_node, rule)
        if rewritten is None:
            return updated_node
        self.count += 1
        return rewritten


def rewrite_call(call: cst.Call, rule: ArgumentRule) -> cst.Call | None:
    """The call spelled the pin's way, or None when the rule does not cover its shape."""
    args = list(call.args)
    if any(arg.star for arg in args):
        return None
    if sum(1 for arg in args if arg.keyword is None) > rule.max_positional:
        return None
    keywords = [arg.keyword.value for arg in args if arg.keyword is not None]
    if any(name in keywords for name in rule.unless):
        return None
    drop: set[int] = set()
    for index, arg in enumerate(args):
        name = arg.keyword.value if arg.keyword is not None else None
        if name is not None and name in rule.drop:
            drop.add(index)
        elif name is not None and name in rule.drop_if:
            if not _same_literal(_code(arg.value), rule.drop_if[name]):
                return None
            drop.add(index)
    renamed = []
    for index, arg in enumerate(args):
        name = arg.keyword.value if arg.keyword is not None else None
        if name is not None and name in rule.rename:
            if rule.rename[name] in keywords:
                return None
            arg = arg.with_changes(keyword=cst.Name(rule.rename[name]))
        renamed.append(arg)
    kept = drop_items(renamed, drop)
    present = {arg.keyword.value for arg in kept if arg.keyword is not None}
    added = [keyword_arg(name, value) for name, value in rule.fill.items() if name not in present]
    if not drop and not added and renamed == args:
        return None
    return call.with_changes(args=append_args(kept, added))


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _same_literal(code: str, literal: str) -> bool:
    """Whether ``code`` is the literal ``literal`` (``'ALL'`` and ``"ALL"`` alike)."""
    try:
        return ast.literal_eval(code) == ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return False
