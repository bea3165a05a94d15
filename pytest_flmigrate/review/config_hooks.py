"""Config hooks: upstream adjusts an architecture's configs at startup through its entry in
``MODELS_CONFIG_MAP`` (``vllm/model_executor/models/config.py``), a class whose
``verify_and_update_config`` / ``verify_and_update_model_config`` sets what the model relies on
(bidirectional attention, an embedding size, cache settings). Registering the plugin's class
does not bring the hook along: where the pin's map has no entry for the architecture and
register_model() adds none, the pin runs the model with configs upstream would have changed, a
difference in outputs nothing else reports. Step 4 copies such hooks (P16, on P30's base) and
step 5 registers them; the finding remains for a hook step 4 could not copy, with the reason."""

from __future__ import annotations

import ast

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index.records import TreeIndex
from pytest_flmigrate.index.registries import CONFIG_HOOKS_MODULE, config_hooks_file, index_config_hooks
from pytest_flmigrate.index.symbols import parse_module
from pytest_flmigrate.review.base import FileView, Finding, ReviewContext, check, manual
from pytest_flmigrate.steps import registrations

CHECK = "config-hooks"
SHOWN = 4  # config fields a finding names


@check(CHECK, roles=frozenset({"registration"}))
def missing_config_hooks(context: ReviewContext, view: FileView) -> list[Finding]:
    """every architecture upstream configures at startup (MODELS_CONFIG_MAP) has a hook at the pin"""
    upstream = index_config_hooks(_vllm(context.upstream_indexes))
    if not upstream:
        return []
    pinned = index_config_hooks(_vllm(context.pinned_indexes))
    try:
        registered = registrations.registered_hooks(view.text, view.target) if view.exists else {}
    except FlmigrateError:
        return []  # register_model() cannot be read: the registration check says why
    line = next((n for n, text in enumerate(view.text.splitlines(), 1) if "def register_model" in text), 1)
    findings = []
    for arch, _ in context.architectures:
        hook = upstream.get(arch)
        if hook is None or arch in pinned or arch in registered:
            continue
        sets = _fields_set(context.upstream_indexes, hook)
        what = f" (it sets {', '.join(sets[:SHOWN])}{' and more' if len(sets) > SHOWN else ''})" if sets else ""
        unfixed = context.unfixed.get((CONFIG_HOOKS_MODULE, hook))
        why = f"; step 4 could not copy it: {unfixed}" if unfixed else ""
        findings.append(
            view.finding(
                CHECK,
                line,
                arch,
                f"upstream configures {arch} at startup with {CONFIG_HOOKS_MODULE}.{hook}{what}; the pin's "
                f"MODELS_CONFIG_MAP has no entry for it, so the pin runs the model with configs upstream changes{why}",
                manual(f'port the hook and register it in register_model(): MODELS_CONFIG_MAP["{arch}"] = <the port>'),
            )
        )
    return findings


def _vllm(indexes: list[TreeIndex]) -> TreeIndex | None:
    return next((index for index in indexes if index.package == "vllm"), None)


def _fields_set(indexes: list[TreeIndex], hook: str) -> list[str]:
    """The attributes the hook class assigns (``hf_config.is_causal``), in order."""
    path = config_hooks_file(_vllm(indexes))
    tree = parse_module(path) if path is not None else None
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == hook), None) if tree else None
    if node is None:
        return []
    found: dict[str, None] = {}
    for sub in ast.walk(node):
        targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target] if isinstance(sub, ast.AugAssign) else []
        for target in targets:
            if isinstance(target, ast.Attribute) and isinstance(target.value, (ast.Name, ast.Attribute)):
                found[f"{ast.unparse(target.value).rsplit('.', 1)[-1]}.{target.attr}"] = None
    return list(found)
