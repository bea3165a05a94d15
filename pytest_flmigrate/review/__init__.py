"""Step 6: the static review of a migration against the pinned vLLM and its transformers.

Pure functions returning :class:`Finding` records; one check module per family:

- imports.py: ``relative-imports``, ``unresolved-imports``, ``transformers-names``
- known_missing.py: ``known-missing-apis`` (docs/api-gap.md's seven)
- calls.py: ``call-signatures``
- attributes.py: ``missing-attributes`` (pinned bases, pinned classes/modules, config objects)
- config_bridge.py: ``config-bridge``;  registration.py: ``registration``
- config_hooks.py: ``config-hooks`` (upstream's startup config hooks of the unit's architectures)
- structure.py: ``merged-projections`` (P8), ``custom-op-paths`` (P11), ``init-override`` (P12)
- hooks.py: ``uncalled-hooks`` (overrides of upstream hooks the pinned base never calls)
- hygiene.py: ``hardcoded-paths``, ``bare-except``

``review(context)`` runs every check on every file it applies to; ``cases(context)`` lists the
(check, file) pairs, one suite test each.
"""

from __future__ import annotations

from dataclasses import replace

from pytest_flmigrate.layout import REGISTRATION_FILE
from pytest_flmigrate.review import (  # noqa: F401  (registers the checks)
    attributes,
    calls,
    config_bridge,
    config_hooks,
    hooks,
    hygiene,
    imports,
    known_missing,
    registration,
    structure,
)
from pytest_flmigrate.review.base import (
    CHECKS,
    Check,
    FileView,
    Finding,
    MigratedFile,
    ReviewContext,
)
from pytest_flmigrate.steps.review_cases import Case

ORDER = (
    "relative-imports",
    "unresolved-imports",
    "known-missing-apis",
    "call-signatures",
    "missing-attributes",
    "transformers-names",
    "config-bridge",
    "registration",
    "config-hooks",
    "merged-projections",
    "custom-op-paths",
    "init-override",
    "uncalled-hooks",
    "hardcoded-paths",
    "bare-except",
)
assert set(ORDER) == set(CHECKS), "every check has a place in ORDER"

__all__ = [
    "CHECKS",
    "ORDER",
    "Case",
    "Check",
    "FileView",
    "Finding",
    "MigratedFile",
    "ReviewContext",
    "cases",
    "review",
    "run_check",
]


def _files(context: ReviewContext) -> list[MigratedFile]:
    unique: dict[str, MigratedFile] = {}
    for file in context.files:  # a module both pulled in and bridged is planned twice: review it once
        unique.setdefault(file.target, file)
    files = list(unique.values())
    if not any(f.target == REGISTRATION_FILE for f in files):
        files.append(MigratedFile.at(REGISTRATION_FILE, "registration"))
    return files


def cases(context: ReviewContext) -> list[Case]:
    """Every (check, file) pair the review runs, checks in registry order, files in plan order."""
    return [Case(c, f.target) for c in ORDER for f in _files(context) if CHECKS[c].applies(f)]


def run_check(context: ReviewContext, check_id: str, file: MigratedFile) -> list[Finding]:
    view = context.view(file)
    if not view.exists and file.role != "registration":
        return [Finding(check_id, file.target, 0, file.target, "the migrated file is missing", "manual: rerun step 4")]
    if view.parse_error:
        return [Finding(check_id, file.target, 0, file.target, "the file does not parse", "manual: fix the syntax")]
    return CHECKS[check_id].function(context, view)


def review(context: ReviewContext, checks: list[str] | None = None) -> list[Finding]:
    """Every finding of ``checks`` (default: all) on every file, in case order, each once: the same
    finding on the same line of code in another file (a module and a copy sharing code) is named
    in the first one's message, not reported again."""
    findings: list[Finding] = []
    for file in _files(context):
        for check_id in ORDER:
            if (checks is None or check_id in checks) and CHECKS[check_id].applies(file):
                findings.extend(run_check(context, check_id, file))
    return _deduplicated(context, findings)


def _deduplicated(context: ReviewContext, findings: list[Finding]) -> list[Finding]:
    views = {file.target: context.view(file) for file in _files(context)}

    def code(finding: Finding) -> str:
        view = views.get(finding.file)
        lines = view.text.splitlines() if view is not None else []
        return lines[finding.line - 1].strip() if 0 < finding.line <= len(lines) else ""

    kept: list[Finding] = []
    first: dict[tuple[str, ...], int] = {}
    for finding in findings:
        key = (finding.check, finding.symbol, finding.message, finding.fix, code(finding))
        index = first.get(key)
        if index is None or kept[index].file == finding.file or not key[-1]:
            first.setdefault(key, len(kept))
            kept.append(finding)
            continue
        earlier = kept[index]
        kept[index] = replace(earlier, message=f"{earlier.message}; the same code in {finding.file}:{finding.line}")
    return kept
