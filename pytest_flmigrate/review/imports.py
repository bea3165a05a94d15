"""Import checks: relative imports left, unresolved vLLM/plugin imports, transformers names the
pinned transformers lacks."""

from __future__ import annotations

import ast

from pytest_flmigrate.index.file_imports import ImportRef, UnresolvedImport, check_import
from pytest_flmigrate.patches import (
    CATALOG,
    p01_relative_imports,
    p02_redirect_imports,
    p14_transformers_renames,
    p15_relocate_imports,
    p16_backport_helpers,
)
from pytest_flmigrate.patches.base import Patch
from pytest_flmigrate.patches.p14_transformers_renames import RENAMES
from pytest_flmigrate.patches.translation import Api
from pytest_flmigrate.review.base import FileView, Finding, ReviewContext, check, manual
from pytest_flmigrate.review.known_missing import KNOWN_MISSING
from pytest_flmigrate.review.patch_ids import fix_for

TRANSFORMERS = "transformers"


def _translations() -> dict[str, list[tuple[Api, Patch]]]:
    found: dict[str, list[tuple[Api, Patch]]] = {}
    for patch in CATALOG:
        for api in patch.apis if patch.refusal is not None else ():
            found.setdefault(api.name, []).append((api, patch))
    return found


TRANSLATIONS = _translations()
"""API name -> (the API, a catalog patch translating it) for each such patch, in catalog order
(P19 and P32 both translate ``FusedMoEFactory``, each at the pins whose tree it fits)."""


@check("relative-imports")
def relative_imports(context: ReviewContext, view: FileView) -> list[Finding]:
    """relative imports left in a plugin file (they resolve against vllm_fl, not vllm)"""
    findings = []
    for node in view.nodes(ast.ImportFrom):
        if node.level:
            dots = "." * node.level + (node.module or "")
            findings.append(
                view.finding(
                    "relative-imports",
                    node,
                    dots,
                    f"relative import 'from {dots} import ...' left; in the plugin it resolves under vllm_fl",
                    fix_for(
                        context, p01_relative_imports.NAME, "import from the absolute vllm.* (or vllm_fl.*) module"
                    ),
                )
            )
    return findings


def _describe(context: ReviewContext, problem: UnresolvedImport) -> tuple[str, str]:
    """(message, fix) of an unresolved vLLM or plugin import."""
    ref = problem.ref
    pinned = context.pinned_versions.get(ref.module.split(".")[0])
    where = f"the pinned {ref.module.split('.')[0]} {pinned}" if pinned else "the plugin"
    plugin_defined = [s for s in problem.elsewhere if s.module.startswith("vllm_fl.")]
    pin_defined = [s for s in problem.elsewhere if not s.module.startswith("vllm_fl.")]
    message = problem.describe(where, hints=False)
    if ref.name is None:
        if problem.nearest:
            message += "; nearest: " + ", ".join(problem.nearest)
        return message, fix_for(
            context, p16_backport_helpers.NAME, f"migrate or port {ref.module} into vllm_fl", ref.module, ""
        )
    if plugin_defined:
        message += "; the plugin defines it in " + ", ".join(s.module for s in plugin_defined[:3])
        return message, fix_for(
            context, p02_redirect_imports.NAME, f"import {ref.name} from {plugin_defined[0].module}"
        )
    unfixed = context.unfixed.get((ref.module, ref.name))
    if unfixed:  # step 4 tried to relocate or backport it: why not
        message += f"; not fixed at step 4: {unfixed}"
    if pin_defined:
        best = pin_defined[0]
        kind = {"assign": "name"}.get(best.kind, best.kind)
        message += f"; the pin defines {kind} {ref.name} in " + ", ".join(s.module for s in pin_defined[:3])
        return message, fix_for(
            context,
            p15_relocate_imports.NAME,
            f"import {ref.name} from {best.module} (check it is the same API)",
            ref.module,
            ref.name,
        )
    if problem.nearest:
        kind = "modules" if problem.reason == "module" else "names there"
        message += f"; nearest {kind}: " + ", ".join(problem.nearest)
    else:
        message += f"; {ref.name} exists nowhere in the pin"
    return message, fix_for(
        context,
        p16_backport_helpers.NAME,
        f"port {ref.name} into vllm_fl by hand or drop its use",
        ref.module,
        ref.name,
    )


@check("unresolved-imports")
def unresolved_imports(context: ReviewContext, view: FileView) -> list[Finding]:
    """imports of vllm and vllm_fl modules and names that do not exist in the pin / the plugin"""
    findings = []
    for ref in view.imports:
        top = ref.module.split(".")[0]
        if top == TRANSFORMERS or not context.resolver.covers(ref.module):
            continue
        if ref.level:
            continue  # relative-imports reports these
        if ref.name in KNOWN_MISSING:
            continue  # known-missing-apis reports these with their patch
        problem = check_import(ref, context.resolver, under=top)
        if problem is None:
            continue
        message, fix = _describe(context, problem)
        refused = _translation_refusal(context, view, ref)
        if refused:
            message, fix = f"{message}; {refused}", manual(f"port the use by hand ({refused})")
        symbol = ref.module if ref.name is None else f"{ref.module}.{ref.name}"
        findings.append(view.finding("unresolved-imports", ref.line, symbol, message, fix))
    return findings


def _translation_refusal(context: ReviewContext, view: FileView, ref: ImportRef) -> str | None:
    """``P19 leaves it: line N: <why>`` when an API translation of the pin's catalog covers this
    import but refuses the file (one of its uses has no pinned spelling with the same behaviour)."""
    if view.parse_error:
        return None
    for api, translation in TRANSLATIONS.get(ref.name or "", []):
        patch_id = context.patch(translation.name)
        if patch_id is None or translation.refusal is None or ref.module not in api.modules:
            continue
        why = translation.refusal(view.text, view.module.rpartition(".")[0])
        return f"{patch_id} leaves it: {why}" if why else None
    return None


@check("transformers-names")
def transformers_names(context: ReviewContext, view: FileView) -> list[Finding]:
    """transformers names (imports and ``transformers.X`` uses) the pinned transformers lacks"""
    resolver = context.resolver
    if not resolver.covers(TRANSFORMERS):
        return []
    version = context.pinned_versions.get(TRANSFORMERS, "?")
    bridged = _bridged_classes(context)
    findings = []
    for ref in view.imports:
        if ref.module.split(".")[0] != TRANSFORMERS:
            continue
        problem = check_import(ref, resolver)
        if problem is None:
            continue
        findings.append(_transformers_finding(context, view, ref.line, ref.module, ref.name, problem, version, bridged))
    # ``transformers.X`` after ``import transformers``
    if view.info.imports.get(TRANSFORMERS) == TRANSFORMERS:
        for node in view.nodes(ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == TRANSFORMERS and isinstance(node.ctx, ast.Load):
                if resolver.resolve(TRANSFORMERS, node.attr) is None:
                    ref = ImportRef(node.lineno, TRANSFORMERS, node.attr)
                    problem = check_import(ref, resolver)
                    if problem is not None:
                        findings.append(
                            _transformers_finding(
                                context, view, node.lineno, TRANSFORMERS, node.attr, problem, version, bridged
                            )
                        )
    return findings


def _bridged_classes(context: ReviewContext) -> dict[str, str]:
    """Config classes the plugin's config bridges define -> bridge module."""
    found = {}
    for file in context.config_files:
        info = context.plugin_index.modules.get(file.module)
        for name, kind in info.defines.items() if info else ():
            if kind == "class":
                found[name] = file.module
    return found


def _transformers_finding(context, view, line, module, name, problem, version, bridged) -> Finding:
    symbol = module if name is None else f"{module}.{name}"

    def finding(message: str, fix: str) -> Finding:
        return view.finding("transformers-names", line, symbol, message, fix)

    module_missing = name is None or problem.reason == "module"
    message = f"transformers {version} has no {'module ' + module if module_missing else name}"
    if not module_missing:
        if (module, name) in RENAMES:
            old = RENAMES[(module, name)]
            return finding(
                message + f"; it spells it {old}",
                fix_for(context, p14_transformers_renames.NAME, f"import {old} as {name}"),
            )
        if name in bridged:
            return finding(
                message + f"; the config bridge {bridged[name]} defines it",
                fix_for(context, p02_redirect_imports.NAME, f"import {name} from {bridged[name]}"),
            )
        in_pin = [s for s in problem.elsewhere if s.module.startswith(TRANSFORMERS)]
        if in_pin:
            return finding(
                message + "; it is defined in " + ", ".join(s.module for s in in_pin[:3]),
                fix_for(context, p15_relocate_imports.NAME, f"import {name} from {in_pin[0].module}", module, name),
            )
    if problem.nearest:
        message += "; nearest: " + ", ".join(problem.nearest)
    remedy = "bridge what is needed into vllm_fl" if module_missing else f"vendor {name} into vllm_fl"
    return finding(
        message,
        fix_for(context, p16_backport_helpers.NAME, f"{remedy} (P13: never upgrade transformers)", module, name or ""),
    )
