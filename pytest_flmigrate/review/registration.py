"""Registration consistency: ``register_model()`` registers every architecture of the unit at
a plugin module that defines the class, and the bridged config under its model_type; everything
the unit's registration imports exists at run time."""

from __future__ import annotations

from pytest_flmigrate.errors import FlmigrateError
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
        wrong = registrations.registration_mismatches(
            view.text, context.architectures, context.plugin_module, context.bridge, view.target
        )
    except FlmigrateError as exc:
        return [view.finding(CHECK, 1, "register_model", exc.message, manual("fix register_model() (step 5)"))]
    line = _register_line(view)
    findings = [view.finding(CHECK, line, m.key, m.describe(), _fix(m)) for m in wrong]
    keys = [arch for arch, _ in context.architectures] + ([context.bridge[0]] if context.bridge else [])
    for missing in registrations.unresolved_entries(view.text, keys, context.resolver, view.target):
        findings.append(
            view.finding(
                CHECK,
                missing.line,
                missing.key,
                f"{missing.message}; at run time the registration would only log it",
                manual("point the entry at what the plugin module defines, or rerun step 4"),
            )
        )
    return findings


def _fix(mismatch: registrations.Mismatch) -> str:
    if mismatch.actual is None:
        return manual("run step 5 (register) again")
    if mismatch.config:
        return manual(f"register _CONFIG_REGISTRY[{mismatch.key!r}] = {mismatch.expected}")
    return manual(f"register {mismatch.key} as {mismatch.expected}")


def _register_line(view: FileView) -> int:
    for number, text in enumerate(view.text.splitlines(), 1):
        if text.lstrip().startswith("def register_model"):
            return number
    return 1
