"""P24: members of pinned classes that upstream spells differently, rewritten where a table entry proves it safe.

What: on a parameter annotated with a class listed in ``DRIFTS`` (imported from one of the
entry's modules), a call of an upstream-only method, or a read of an upstream-only attribute,
becomes the pin's spelling of the same value; any other shape (a method called with
arguments or not called, an attribute assigned) is left alone (step 6 reports it)::

    def forward(self, hidden_states, pooling_metadata: PoolingMetadata):
        cursor = pooling_metadata.get_pooling_cursor()
    # becomes
        cursor = pooling_metadata.pooling_cursor

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
from pytest_flmigrate.index.symbols import absolute_module

from .base import PatchContext, PatchTransformer
from .imports import small_statements
from .syntax import dotted_name

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
    """

    owner: str
    modules: tuple[str, ...]
    member: str
    call: bool
    pinned: str
    why: str
    returns: str | None = None


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
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                if returns is not None and len(node.targets) == 1:
                    self._scopes[-1][target.target.value] = returns
                else:
                    self._scopes[-1].pop(target.target.value, None)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        drift = self._drift(updated_node.func) if not updated_node.args else None
        return self._rewritten(drift, updated_node.func) if drift is not None and drift.call else updated_node

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        drift = self._drift(updated_node) if id(original_node) not in self._stores else None
        return self._rewritten(drift, updated_node) if drift is not None and not drift.call else updated_node

    def _drift(self, node: cst.BaseExpression) -> MemberDrift | None:
        if not isinstance(node, cst.Attribute) or not isinstance(node.value, cst.Name) or not self._scopes:
            return None
        owner = self._scopes[-1].get(node.value.value)
        return drift_for(owner, node.attr.value) if owner else None

    def _rewritten(self, drift: MemberDrift, attribute: cst.BaseExpression) -> cst.BaseExpression:
        assert isinstance(attribute, cst.Attribute) and isinstance(attribute.value, cst.Name)
        self.count += 1
        return cst.parse_expression(drift.pinned.format(value=attribute.value.value))


def imported_owners(module: cst.Module, package: str) -> dict[str, str]:
    """Local name -> owner class, for the listed classes the module imports from their modules."""
    owners: dict[str, str] = {}
    for statement in small_statements(module):
        if not isinstance(statement, cst.ImportFrom) or isinstance(statement.names, cst.ImportStar):
            continue
        origin = absolute_module(package, len(statement.relative), dotted_name(statement.module))
        for alias in statement.names:
            name = dotted_name(alias.name) or ""
            if is_owner(origin, name):
                local = alias.asname.name if alias.asname else None
                owners[local.value if isinstance(local, cst.Name) else name] = name
    return owners


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
    bare_calls = {
        id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call) and not node.args and not node.keywords
    }
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        for read, drift in drifts.items():
            if drift is None or node.attr != drift.member:
                continue
            if (drift.call and id(node) not in bare_calls) or not isinstance(node.ctx, ast.Load):
                left.add(read)
    return left
