"""P24: members of pinned classes that upstream spells differently, rewritten where a table entry proves it safe.

What: on a parameter annotated with a class listed in ``DRIFTS`` (imported from one of the
entry's modules), or a local bound to a call of a method whose result is such a class
(``RETURNED_BY``), a call of an upstream-only method, or a read of an upstream-only attribute,
becomes the pin's spelling of the same value; any other shape (a method called with other
arguments than the entry's literal ones or not called, an attribute assigned) is left alone
(step 6 reports it)::

    def forward(self, hidden_states, pooling_metadata: PoolingMetadata):
        cursor = pooling_metadata.get_pooling_cursor()
    # becomes
        cursor = pooling_metadata.pooling_cursor

    tokenizer = self.get_tokenizer()
    token_id = tokenizer.convert_tokens_to_ids("<|media_pad|>")
    # becomes
    token_id = tokenizer.get_vocab().get("<|media_pad|>", getattr(tokenizer, "unk_token_id", None))

One count per rewrite. Backports (P16) accept a copy that reads such a member only when every
read of it has the shape this patch rewrites (:func:`untranslated`): the copy then reads what
the pin's objects have.

Why: each entry is a member upstream added as an accessor of what the pin's class already
holds, or a field of a feature the pin lacks (its value there is always upstream's default),
and its ``why`` says why the pinned expression is the same value; both classes are checked
against the real trees (tests/integration). Members with new behaviour stay findings
(``FusedMoEConfig.activation``: the pin's config has no activation at all, the layer holds it).

When: the listed members on annotated parameters, pins of the 0.13 line (the entries
were checked on vLLM 0.13.0).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

import libcst as cst

from pytest_flmigrate.index.resolve import annotation_class_name

from .base import PatchContext, PatchTransformer
from .imports import from_imports

ID = "P24"
NAME = "member-drift"
PINNED = ">=0.13,<0.14"  # checked on vLLM 0.13.0


@dataclass(frozen=True)
class MemberDrift:
    """``value.<member>()`` (``call``) or ``value.<member>`` on a ``value: <owner>`` parameter,
    spelled the pin's way.

    owner:   the class name; modules: where a file may import it from (upstream's and the pin's)
    member:  upstream's zero-argument method (``call``) or attribute
    pinned:  the pin's expression of the same value, ``{value}`` standing for the receiver
    returns: the listed class the value is an instance of, when a local bound to it is a
             receiver too (``cursor = m.get_pooling_cursor()`` then ``cursor.get_finished_mask()``)
    arguments: the method's positional arguments, each a string literal in the call, standing
             for ``{name}`` in ``pinned`` (none: a call without arguments)
    """

    owner: str
    modules: tuple[str, ...]
    member: str
    call: bool
    pinned: str
    why: str
    returns: str | None = None
    arguments: tuple[str, ...] = ()


_POOLER_CONFIG = ("vllm.config", "vllm.config.pooler")
DRIFTS: tuple[MemberDrift, ...] = (
    MemberDrift(
        owner="PoolingMetadata",
        modules=("vllm.v1.pool.metadata",),
        member="get_pooling_cursor",
        call=True,
        pinned="{value}.pooling_cursor",
        why=(
            "upstream's method returns the pooling_cursor field after checking it was built; the "
            "pin's model runner builds it before any pooler runs and its own poolers read the field"
        ),
        returns="PoolingCursor",
    ),
    MemberDrift(
        owner="PoolingCursor",
        modules=("vllm.v1.pool.metadata",),
        member="get_finished_mask",
        call=True,
        pinned="{value}.is_finished().tolist()",
        why=(
            "upstream precomputes finished_mask as torch.eq(prompt_lens_cpu, seq_lens_cpu).tolist(); "
            "the pin's is_finished() is prompt_lens_cpu == seq_lens_cpu, the same list once .tolist()"
        ),
    ),
    MemberDrift(
        owner="PoolingMetadata",
        modules=("vllm.v1.pool.metadata",),
        member="get_prompt_token_ids_cpu",
        call=True,
        pinned="[token_ids.cpu() for token_ids in {value}.get_prompt_token_ids()]",
        why=(
            "upstream keeps a CPU copy of prompt_token_ids next to the device tensor and slices "
            "it as get_prompt_token_ids slices the device one; the pin has the device tensor "
            "only, and its rows copied to the CPU are the same values (one device-to-host copy)"
        ),
    ),
    MemberDrift(
        owner="PoolerConfig",
        modules=_POOLER_CONFIG,
        member="get_seq_pooling_type",
        call=True,
        pinned="{value}.pooling_type",
        why=(
            "upstream split pooling_type into seq_pooling_type and tok_pooling_type; the pin's "
            "sequence poolers pool with pooling_type (Pooler.for_embed/for_classify), resolved by "
            "ModelConfig before a pooler is built, as upstream's getter requires"
        ),
    ),
    MemberDrift(
        owner="PoolerConfig",
        modules=_POOLER_CONFIG,
        member="get_tok_pooling_type",
        call=True,
        pinned='("STEP" if {value}.pooling_type == "STEP" else "ALL")',
        why=(
            "the pin's token poolers use StepPooler when pooling_type is 'STEP' and AllPooler "
            "otherwise (Pooler.for_token_embed/for_token_classify): upstream's two token types"
        ),
    ),
    MemberDrift(
        owner="TokenizerLike",
        modules=("vllm.tokenizers", "vllm.tokenizers.protocol"),
        member="convert_tokens_to_ids",
        call=True,
        arguments=("tokens",),
        pinned='{value}.get_vocab().get({tokens}, getattr({value}, "unk_token_id", None))',
        why=(
            "upstream's protocol declares the lookup its tokenizers implement; the pin's protocol "
            "has get_vocab only, which every pinned tokenizer implements (the pin's Mistral tokenizer "
            "has no convert_tokens_to_ids). For one token, transformers' tokenizers look it up in "
            "the vocabulary with the added tokens, which get_vocab returns, and answer unk_token_id "
            "for a token it lacks"
        ),
    ),
    *(
        MemberDrift(
            owner="PoolerConfig",
            modules=_POOLER_CONFIG,
            member=member,
            call=False,
            pinned="None",
            why=(
                f"upstream's classification heads compute activation((logit - logit_mean) / logit_sigma) "
                f"when the pooler config sets {member}; the pin's PoolerConfig has no such field, so no "
                "config given to the pin carries it and upstream's value for it is its default, None "
                "(the heads then apply the activation to the logits, as the pin's do)"
            ),
        )
        for member in ("logit_mean", "logit_sigma")
    ),
    MemberDrift(
        owner="PoolingParams",
        modules=("vllm.pooling_params", "vllm"),
        member="late_chunking_params",
        call=False,
        pinned="None",
        why=(
            "late chunking is an upstream request option (mean-pool token states per chunk); the "
            "pin's PoolingParams has no such field, so no request to the pin carries it and "
            "upstream's value for such a request is its default, None"
        ),
    ),
)


RETURNED_BY: dict[str, str] = {"get_tokenizer": "TokenizerLike"}
"""Method name -> the listed class its result is an instance of, at the pin and upstream
(``BaseProcessingInfo.get_tokenizer``, ``InputProcessingContext.get_tokenizer``; checked in both
trees): a local bound to a call of it without arguments is a receiver."""


HELD_AS: dict[str, str] = {"pooler_config": "PoolerConfig"}
"""Attribute name -> the listed class vLLM's config objects hold under it, at the pin and upstream
(``ModelConfig.pooler_config: PoolerConfig | None``; checked in both trees): a read through it
(``model_config.pooler_config.logit_mean``) is rewritten when the pinned spelling does not use the
receiver (a field of a feature the pin lacks)."""


def drift_for(owner: str, member: str) -> MemberDrift | None:
    return next((d for d in DRIFTS if d.owner == owner and d.member == member), None)


def is_owner(module: str, name: str | None) -> bool:
    """Whether ``from module import name`` imports a class some entry is about."""
    return any(d.owner == name and module in d.modules for d in DRIFTS)


def relevant(source: str, context: PatchContext) -> bool:
    """Only files spelling a listed member can need this patch."""
    return any(drift.member in source for drift in DRIFTS)


class Transformer(PatchTransformer):
    def visit_Module(self, node: cst.Module) -> None:
        self._owners = imported_owners(node, self.context.package)
        self._scopes: list[dict[str, str]] = []  # per function: parameter -> owner class
        self._stores: set[int] = set()  # attribute nodes assigned or deleted

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        typed = dict(self._scopes[-1]) if self._scopes else {}
        params = node.params
        for param in [*params.posonly_params, *params.params, *params.kwonly_params]:
            owner = _annotated(param, self._owners)
            if owner is not None:
                typed[param.name.value] = owner
            else:
                typed.pop(param.name.value, None)
        self._scopes.append(typed)

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.FunctionDef:
        self._scopes.pop()
        return updated_node

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._stores.add(id(node.target))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._stores.add(id(node.target))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._stores.add(id(node.target))

    def visit_Del(self, node: cst.Del) -> None:
        self._stores.add(id(node.target))

    def visit_Assign(self, node: cst.Assign) -> None:
        """``local = <a listed member with a known class>``: the local is a receiver too; any
        other binding of a typed name ends its type."""
        if not self._scopes:
            return
        value = node.value.func if isinstance(node.value, cst.Call) and not node.value.args else node.value
        drift = self._drift(value)
        returns = drift.returns if drift is not None and drift.call == isinstance(node.value, cst.Call) else None
        if returns is None and value is not node.value and isinstance(value, cst.Attribute):
            returns = RETURNED_BY.get(value.attr.value)
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                if returns is not None and len(node.targets) == 1:
                    self._scopes[-1][target.target.value] = returns
                else:
                    self._scopes[-1].pop(target.target.value, None)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        drift = self._drift(updated_node.func)
        if drift is None or not drift.call:
            return updated_node
        arguments = literal_arguments(updated_node, drift)
        return self._rewritten(drift, updated_node.func, arguments) if arguments is not None else updated_node

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        drift = self._drift(updated_node) if id(original_node) not in self._stores else None
        return self._rewritten(drift, updated_node) if drift is not None and not drift.call else updated_node

    def _drift(self, node: cst.BaseExpression) -> MemberDrift | None:
        if not isinstance(node, cst.Attribute):
            return None
        receiver = node.value
        if isinstance(receiver, cst.Attribute):
            owner = HELD_AS.get(receiver.attr.value)
            drift = drift_for(owner, node.attr.value) if owner else None
            return drift if drift is not None and "{value}" not in drift.pinned else None
        if not isinstance(receiver, cst.Name) or not self._scopes:
            return None
        owner = self._scopes[-1].get(receiver.value)
        return drift_for(owner, node.attr.value) if owner else None

    def _rewritten(
        self, drift: MemberDrift, attribute: cst.BaseExpression, arguments: dict[str, str] | None = None
    ) -> cst.BaseExpression:
        assert isinstance(attribute, cst.Attribute)
        self.count += 1
        receiver = attribute.value.value if isinstance(attribute.value, cst.Name) else ""
        return cst.parse_expression(drift.pinned.format(value=receiver, **(arguments or {})))


def literal_arguments(call: cst.Call, drift: MemberDrift) -> dict[str, str] | None:
    """The code of each of ``drift``'s arguments in ``call`` (a string literal each), or None
    when the call has another shape."""
    args = list(call.args)
    if len(args) != len(drift.arguments) or any(arg.keyword or arg.star for arg in args):
        return None
    if not all(isinstance(arg.value, cst.SimpleString) for arg in args):
        return None
    return {name: cst.Module(body=[]).code_for_node(arg.value) for name, arg in zip(drift.arguments, args)}


def imported_owners(module: cst.Module, package: str) -> dict[str, str]:
    """Local name -> owner class, for the listed classes the module imports from their modules."""
    return {local: name for origin, name, local in from_imports(module, package) if is_owner(origin, name)}


def _annotated(param: cst.Param, owners: dict[str, str]) -> str | None:
    if param.annotation is None:
        return None
    code = cst.Module(body=[]).code_for_node(param.annotation.annotation)
    try:
        expression = ast.parse(code, mode="eval").body
    except SyntaxError:
        return None
    return owners.get(annotation_class_name(expression) or "")


def untranslated(text: str, reads: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Of ``reads`` ((owner class, member) a unit reads on annotated parameters), those this
    patch does not rewrite in ``text`` everywhere: no entry, a method not called or called with
    arguments, an attribute assigned or deleted."""
    drifts = {read: drift_for(*read) for read in reads}
    left = {read for read, drift in drifts.items() if drift is None}
    if len(left) == len(drifts):
        return left
    tree = ast.parse(text)
    calls = {id(node.func): node for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        for read, drift in drifts.items():
            if drift is None or node.attr != drift.member:
                continue
            call = calls.get(id(node))
            if (drift.call and not (call is not None and _shaped(call, drift))) or not isinstance(node.ctx, ast.Load):
                left.add(read)
    return left


def _shaped(call: ast.Call, drift: MemberDrift) -> bool:
    """Whether ``call`` has the shape :func:`literal_arguments` rewrites."""
    return (
        not call.keywords
        and len(call.args) == len(drift.arguments)
        and all(isinstance(arg, ast.Constant) and isinstance(arg.value, str) for arg in call.args)
    )
