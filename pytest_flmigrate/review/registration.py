"""Registration consistency: ``register_model()`` registers every architecture of the unit at
a plugin module that defines the class, and the bridged config under its model_type."""

from __future__ import annotations

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.layout import PLUGIN_PACKAGE
from pytest_flmigrate.review.base import FileView, Finding, ReviewContext, check, manual
from pytest_flmigrate.steps import registrations

CHECK = "registration"


@check(CHECK, roles=frozenset({"registration"}))
def registration(context: ReviewContext, view: FileView) -> list[Finding]:
    """register_model() holds one entry per architecture and the bridged config, each pointing at a class that exists"""
    if not view.exists:
        return [
            view.finding(
                CHECK,
                1,
                "register_model",
                f"{view.target} is missing",
                manual("create vllm_fl/__init__.py with register_model() (step 5)"),
            )
        ]
    try:
        entries = registrations.registered_entries(view.text, view.target)
        configs = registrations.registered_configs(view.text, view.target)
        wrong = registrations.registration_mismatches(
            view.text, context.architectures, context.plugin_module, context.bridge, view.target
        )
    except FlmigrateError as exc:
        return [view.finding(CHECK, 1, "register_model", exc.message, manual("fix register_model() (step 5)"))]
    line = _register_line(view)
    findings = [view.finding(CHECK, line, m.key, m.describe(), _fix(m)) for m in wrong]
    targets = [(arch, entries.get(arch)) for arch, _ in context.architectures]
    if context.bridge is not None:
        targets.append((context.bridge[0], configs.get(context.bridge[0])))
    for key, actual in targets:
        if actual is not None:
            findings += _target_exists(context, view, line, key, actual)
    return findings


def _fix(mismatch: registrations.Mismatch) -> str:
    if mismatch.actual is None:
        return manual("run step 5 (register) again")
    if mismatch.config:
        return manual(f"register _CONFIG_REGISTRY[{mismatch.key!r}] = {mismatch.expected}")
    return manual(f"register {mismatch.key} as {mismatch.expected}")


def _target_exists(context: ReviewContext, view: FileView, line: int, key: str, target: str) -> list[Finding]:
    module, _, name = target.partition(":")
    if not module.startswith(PLUGIN_PACKAGE) or not name:
        return []
    resolver = context.resolver
    if not resolver.has_module(module):
        return [
            view.finding(
                CHECK,
                line,
                key,
                f"{target}: no module {module} in the plugin",
                manual("migrate the module (step 4) or fix the entry"),
            )
        ]
    symbol = resolver.resolve(module, name)
    if symbol is None or symbol.kind != "class":
        near = resolver.nearest(module, name)
        hint = f"; nearest: {', '.join(near)}" if near else ""
        return [
            view.finding(
                CHECK,
                line,
                key,
                f"{target}: {module} defines no class {name}{hint}",
                manual("point the entry at the class the module defines"),
            )
        ]
    return []


def _register_line(view: FileView) -> int:
    for number, text in enumerate(view.text.splitlines(), 1):
        if text.lstrip().startswith("def register_model"):
            return number
    return 1
