"""Registration consistency: ``register_model()`` registers every architecture of the unit at
a plugin module that defines the class, and the bridged config under its model_type."""

from __future__ import annotations

from pytest_flmigrate import register
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.review.base import FileView, Finding, ReviewContext, check, manual

CHECK = "registration"


@check(CHECK, roles=frozenset({"registration"}))
def registration(context: ReviewContext, view: FileView) -> list[Finding]:
    """register_model() holds one entry per architecture and the bridged config, each pointing at a class that exists"""
    if not view.exists:
        return [view.finding(CHECK, 1, "register_model", f"{view.target} is missing",
                             manual("create vllm_fl/__init__.py with register_model() (step 5)"))]
    try:
        entries = register.registered_entries(view.text, view.target)
        configs = register.registered_configs(view.text, view.target)
    except FlmigrateError as exc:
        return [view.finding(CHECK, 1, "register_model", exc.message, manual("fix register_model() (step 5)"))]
    findings = []
    line = _register_line(view)
    for architecture, class_name in context.architectures:
        expected = f"{context.plugin_module}:{class_name}"
        actual = entries.get(architecture)
        if actual is None:
            findings.append(view.finding(CHECK, line, architecture, f"not registered; expected {expected}",
                                         manual("run step 5 (register) again")))
            continue
        if actual != expected:
            findings.append(view.finding(CHECK, line, architecture, f"registered as {actual}, expected {expected}",
                                         manual(f"register {architecture} as {expected}")))
        findings += _target_exists(context, view, line, architecture, actual)
    if context.bridge is not None:
        model_type, class_name, module = context.bridge
        expected = f"{module}:{class_name}"
        actual = configs.get(model_type)
        if actual is None:
            findings.append(view.finding(CHECK, line, model_type, f"config bridge not registered; expected {expected}",
                                         manual("run step 5 (register) again")))
        else:
            if actual != expected:
                findings.append(view.finding(CHECK, line, model_type, f"config registered as {actual}, expected {expected}",
                                             manual(f"register _CONFIG_REGISTRY[{model_type!r}] = {expected}")))
            findings += _target_exists(context, view, line, model_type, actual)
    return findings


def _target_exists(context: ReviewContext, view: FileView, line: int, key: str, target: str) -> list[Finding]:
    module, _, name = target.partition(":")
    if not module.startswith("vllm_fl") or not name:
        return []
    resolver = context.resolver
    if not resolver.has_module(module):
        return [view.finding(CHECK, line, key, f"{target}: no module {module} in the plugin",
                             manual("migrate the module (step 4) or fix the entry"))]
    symbol = resolver.resolve(module, name)
    if symbol is None or symbol.kind != "class":
        near = resolver.nearest(module, name)
        hint = f"; nearest: {', '.join(near)}" if near else ""
        return [view.finding(CHECK, line, key, f"{target}: {module} defines no class {name}{hint}",
                             manual("point the entry at the class the module defines"))]
    return []


def _register_line(view: FileView) -> int:
    for number, text in enumerate(view.text.splitlines(), 1):
        if text.lstrip().startswith("def register_model"):
            return number
    return 1
