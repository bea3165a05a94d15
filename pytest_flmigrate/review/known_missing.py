"""The known-missing APIs (docs/api-gap.md's seven): every use of them, with the catalog patch.

Each entry names the pinned versions that lack it and is confirmed against the pinned index
before it is reported (the pin is data: a pin that has the API gets no finding).
"""

from __future__ import annotations

import ast
from functools import lru_cache

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import (
    p03_mamba_state_copy,
    p04_mark_model_context,
    p09_gated_delta_net_state_dtype,
    p10_mamba_cache_mode,
)
from pytest_flmigrate.review.base import FileView, Finding, ReviewContext, check
from pytest_flmigrate.review.names import call_shape
from pytest_flmigrate.review.patch_ids import fix_for

P3, P4, P9, P10 = (
    p03_mamba_state_copy.NAME,
    p04_mark_model_context.NAME,
    p09_gated_delta_net_state_dtype.NAME,
    p10_mamba_cache_mode.NAME,
)
# Pins that lack them: absent from vLLM 0.13.0, present from 0.15.0 on (0.15.0, 0.20.2, 0.24.0, 0.32.0 checked).
BEFORE_0_15 = SpecifierSet("<0.15")
# name -> (the patch that rewrites it, how it is used, suggestion, the pinned versions that lack it)
KNOWN_MISSING: dict[str, tuple[str, str, str, SpecifierSet]] = {
    "_mark_tower_model": (P4, "member", "build the tower directly (P4 pattern)", BEFORE_0_15),
    "_mark_language_model": (P4, "member", "build the language model directly (P4 pattern)", BEFORE_0_15),
    "MambaStateCopyFunc": (P3, "name", "drop the import and the methods using it", BEFORE_0_15),
    "MambaStateCopyFuncCalculator": (P3, "name", "drop the import and the methods using it", BEFORE_0_15),
    "get_mamba_state_copy_func": (P3, "member", "delete the method (the pin copies mamba state itself)", BEFORE_0_15),
    "gated_delta_net_state_dtype": (P9, "call", "drop the third argument", BEFORE_0_15),
    "mamba_cache_mode": (P10, "member", "test cache_config.enable_prefix_caching instead", BEFORE_0_15),
}
CHECK = "known-missing-apis"


def _missing_in_pin(context: ReviewContext, name: str, usage: str) -> bool:
    resolver = context.pinned_resolver
    if usage == "name":
        return not resolver.locate(name, "vllm")
    if usage == "member":
        return name not in resolver.all_member_names() and not resolver.locate(name, "vllm")
    return True


def _in_range(version: str, lacking: SpecifierSet) -> bool:
    """The catalog entry is about this pin (an unknown version is checked against the index alone)."""
    try:
        return lacking.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return True


@lru_cache(maxsize=8)
def _gdn_method(resolver: Resolver):
    """(owner module, class, FunctionInfo) of the pin's gated_delta_net_state_dtype."""
    for index in resolver.indexes.values():
        for module, class_name in index.classes_with_member("gated_delta_net_state_dtype"):
            method = index.modules[module].classes[class_name].methods.get("gated_delta_net_state_dtype")
            if method is not None:
                return module, class_name, method
    return None


def _gdn_problem(context: ReviewContext, call: ast.Call) -> str | None:
    found = _gdn_method(context.pinned_resolver)
    positional, keywords, star_args, star_kwargs = call_shape(call)
    if found is None:
        return "the pin has no gated_delta_net_state_dtype"
    module, cls, method = found
    bound = method.kind in ("classmethod", "function")
    problems = method.check_call(positional, keywords, bound=bound, star_args=star_args, star_kwargs=star_kwargs)
    if not problems:
        return None
    return f"{'; '.join(problems)}; the pin's {cls}.gated_delta_net_state_dtype is {method.signature(bound=True)}"


@check(CHECK)
def known_missing_apis(context: ReviewContext, view: FileView) -> list[Finding]:
    """the APIs known to be missing from older pins such as vLLM 0.13.0 (docs/api-gap.md), where the pin indeed lacks them"""
    findings: dict[tuple[int, str], Finding] = {}

    def add(node: ast.AST, name: str, message: str) -> None:
        patch_name, _, suggestion, _ = KNOWN_MISSING[name]
        key = (getattr(node, "lineno", 0), name)
        if key not in findings:
            findings[key] = view.finding(CHECK, node, name, message, fix_for(context, patch_name, suggestion))

    pinned = context.pinned_versions.get("vllm", "?")
    confirmed = {
        name
        for name, (_, usage, _, lacking) in KNOWN_MISSING.items()
        if _in_range(pinned, lacking) and (usage == "call" or _missing_in_pin(context, name, usage))
    }
    for node in ast.walk(view.tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in confirmed and KNOWN_MISSING[alias.name][1] == "name":
                    add(node, alias.name, f"imported from {node.module}; vLLM {pinned} has no {alias.name}")
        elif isinstance(node, ast.Name) and node.id in confirmed and KNOWN_MISSING[node.id][1] == "name":
            add(node, node.id, f"vLLM {pinned} has no {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in confirmed and KNOWN_MISSING[node.attr][1] == "member":
            add(node, node.attr, f"vLLM {pinned} has no {node.attr}")
        elif (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name in confirmed
            and KNOWN_MISSING[node.name][1] == "member"
        ):
            add(node, node.name, f"defines {node.name}, a hook vLLM {pinned} never calls, typed with names it lacks")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "gated_delta_net_state_dtype"
        ):
            problem = _gdn_problem(context, node)
            if problem:
                add(node, "gated_delta_net_state_dtype", problem)
    return sorted(findings.values(), key=lambda f: (f.line, f.symbol))
