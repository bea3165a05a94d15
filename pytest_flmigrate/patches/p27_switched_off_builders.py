"""P27: builders of a feature whose switch the pin lacks become what they build with it off.

What: in a file whose every use of a builder listed in ``BUILDERS`` is a call with plain
arguments (names, attributes, literals), each call becomes the object upstream's builder
returns when the feature is switched off, and the import names that class instead (from where
step 4 puts it: upstream's definition is backported into ``vllm_fl/compat/``, P16)::

    from vllm.model_executor.layers.fusion.mm_input_norm import build_mm_input_norm
    input_norm=build_mm_input_norm(vllm_config.model_config)
    # becomes
    from vllm_fl.compat.model_executor.layers.fusion.mm_input_norm import IdentityInputNorm
    input_norm=IdentityInputNorm()

    from vllm.utils.gpu_sync_debug import gpu_sync_allowed
    with gpu_sync_allowed():
    # becomes
    from contextlib import nullcontext
    with nullcontext():

One count per call and per import statement. A file that uses the builder otherwise (passes it
on, subclasses it, ``*args``, an argument computed by a call) is refused at step 4, naming the
line.

Why: each builder reads a switch that exists upstream only (its ``switch``: a config field or
an environment flag); at the pin nothing sets it, so upstream's builder takes its "switched
off" branch on every call, and that branch returns ``<result>()``. Both facts are checked
against the real trees (tests/integration): the pin lacks the switch, upstream has it, and the
builder's first statement returns the result (directly or through a module constant) when it
is off. The rest of the builder (a fused Triton kernel, ``torch.ops`` for XPU; CUDA sync checks
armed by upstream's worker) is never reached at the pin, and is what made it impossible to
backport whole. The result's import is one step 4 plans like upstream's own imports
(``added_imports``): relocated or backported.

When: pins of the 0.13 line (the switches were checked on vLLM 0.13.0).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from .base import PatchTransformer
from .imports import small_statements
from .syntax import dotted, dotted_name, drop_items, parsed
from .translation import Api, Translation, Translations, Uses, has_star, import_module

ID = "P27"
NAME = "switched-off-builders"
PINNED = ">=0.13,<0.14"  # the switches were checked on vLLM 0.13.0


@dataclass(frozen=True)
class SwitchedOffBuilder:
    """``api`` called with plain arguments -> ``result()``.

    result: (module, class) built when the switch is off, called with no argument
    switch: (module, class, field) the builder reads, which upstream has and the pin lacks (class
            ``""``: a module-level name, such as an environment flag of ``vllm.envs``)
    """

    api: Api
    result: tuple[str, str]
    switch: tuple[str, str, str]
    why: str


_MM_INPUT_NORM = "vllm.model_executor.layers.fusion.mm_input_norm"
BUILDERS: tuple[SwitchedOffBuilder, ...] = (
    SwitchedOffBuilder(
        api=Api("build_mm_input_norm", (_MM_INPUT_NORM,)),
        result=(_MM_INPUT_NORM, "IdentityInputNorm"),
        switch=("vllm.config.multimodal", "MultiModalConfig", "mm_device_do_normalize"),
        why=(
            "upstream normalises images on the device only when mm_device_do_normalize is set (raw "
            "uint8 pixels then reach the model); the pin's processors normalise on the host, as the "
            "builder's IdentityInputNorm (a cast to the visual dtype) expects"
        ),
    ),
    SwitchedOffBuilder(
        api=Api("gpu_sync_allowed", ("vllm.utils.gpu_sync_debug",)),
        result=("contextlib", "nullcontext"),
        switch=("vllm.envs", "", "VLLM_GPU_SYNC_CHECK"),
        why=(
            "upstream's GPU<->CPU sync check is armed by its worker after warmup when "
            "VLLM_GPU_SYNC_CHECK is set; the pin has neither the flag nor the check, so a region "
            "allowing syncs is the no-op context upstream returns when the check is off"
        ),
    ),
)


def _file_refusal(uses: Uses) -> tuple[cst.CSTNode, str] | None:
    if uses.others:
        return uses.others[0], "used otherwise than called (passed on or subclassed)"
    return None


def _plain(node: cst.BaseExpression) -> bool:
    return dotted_name(node) is not None or isinstance(node, (cst.SimpleString, cst.Integer, cst.Float))


def _call_refusal(call: cst.Call, uses: Uses) -> str | None:
    if has_star(call):
        return "*args/**kwargs cannot be checked"
    if not all(_plain(arg.value) for arg in call.args):
        return "an argument is computed by a call, which dropping it would skip"
    return None


TRANSLATION = Translations(tuple(Translation(builder.api, Uses, _file_refusal, _call_refusal) for builder in BUILDERS))
relevant, refusal, rewritten_imports = TRANSLATION.relevant, TRANSLATION.refusal, TRANSLATION.rewritten_imports
BY_API = {builder.api: builder for builder in BUILDERS}


def added_imports(source: str, package: str) -> set[tuple[str, str]]:
    """The results this patch imports in ``source``: step 4 relocates or backports them (P15, P16)."""
    if not TRANSLATION.relevant(source, None):
        return set()
    return {BY_API[api].result for api in TRANSLATION.translated(parsed(source), package)}


class Transformer(PatchTransformer):
    def visit_Module(self, node: cst.Module) -> None:
        package = self.context.package
        translated = {BY_API[api] for api in TRANSLATION.translated(node, package)}
        self._builders: dict[str, SwitchedOffBuilder] = {}
        for builder in translated:
            uses, _ = next(part for part in TRANSLATION.parts if part.api == builder.api).decide(node, package)
            assert uses is not None, "a translated builder is imported"
            self._builders.update(dict.fromkeys(uses.names, builder))
        self._bound = _bound_names(node)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        func = updated_node.func
        builder = self._builders.get(func.value) if isinstance(func, cst.Name) else None
        if builder is None:
            return updated_node
        self.count += 1
        return cst.Call(func=cst.Name(builder.result[1]))

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.BaseStatement] | cst.RemovalSentinel:
        if not self._builders:
            return updated_node
        body: list[cst.BaseSmallStatement] = []
        added: list[cst.SimpleStatementLine] = []
        changed = False
        for small in updated_node.body:
            builders = self._imported_builders(small)
            if not builders:
                body.append(small)
                continue
            changed = True
            assert isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar)
            aliases = list(small.names)
            kept = drop_items(aliases, {i for i, alias in enumerate(aliases) if alias in builders})
            if kept:
                body.append(small.with_changes(names=kept))
            for builder in dict.fromkeys(builders.values()):
                if builder.result[1] not in self._bound:
                    self._bound.add(builder.result[1])
                    added.append(self._result_import(builder))
        if not changed:
            return updated_node
        self.count += 1
        lines: list[cst.BaseStatement] = [updated_node.with_changes(body=body)] if body else []
        lines += added
        if not lines:
            return cst.RemovalSentinel.REMOVE
        return lines[0] if len(lines) == 1 else cst.FlattenSentinel(lines)  # type: ignore[return-value]

    def _imported_builders(self, small: cst.BaseSmallStatement) -> dict[cst.ImportAlias, SwitchedOffBuilder]:
        if not isinstance(small, cst.ImportFrom) or isinstance(small.names, cst.ImportStar):
            return {}
        module = import_module(small, self.context.package)
        found = {}
        for alias in small.names:
            local = alias.asname.name if alias.asname else alias.name
            builder = self._builders.get(dotted_name(local) or "")
            if builder is not None and module in builder.api.modules and dotted_name(alias.name) == builder.api.name:
                found[alias] = builder
        return found

    def _result_import(self, builder: SwitchedOffBuilder) -> cst.SimpleStatementLine:
        """``from <where step 4 put the result> import <result>``."""
        context = self.context
        module, name = (
            context.backports.get(builder.result) or context.relocations.get(builder.result) or builder.result
        )
        local = builder.result[1]
        alias = cst.ImportAlias(name=cst.Name(name), asname=None if name == local else cst.AsName(name=cst.Name(local)))
        return cst.SimpleStatementLine(body=[cst.ImportFrom(module=dotted(module), names=[alias])])


def _bound_names(module: cst.Module) -> set[str]:
    """Names the module's imports bind (a result already imported is not imported twice)."""
    bound: set[str] = set()
    for statement in small_statements(module):
        if isinstance(statement, cst.ImportFrom) and not isinstance(statement.names, cst.ImportStar):
            for alias in statement.names:
                local = alias.asname.name if alias.asname else alias.name
                bound.add(dotted_name(local) or "")
    return bound
