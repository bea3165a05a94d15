"""Step 6: the static review. One test per check and file (``-k unresolved-imports``,
``-k "qwen3_5.py"``); a failure lists the findings, one per line:
``file:line: [check] symbol: message (fix: patch id or manual: suggestion)``."""

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.steps.review_cases import Case

pytestmark = pytest.mark.step(6)


def model_cases(model_run) -> list[Case]:
    """The (check, file) pairs of this model, read by the suite's pytest_generate_tests."""
    try:
        return model_run.review_cases()
    except FlmigrateError:
        # no plan (steps 2-4 say why): one test that reports the same error, or is blocked
        return [Case("review", "migration")]


def test_review(model_run, case, migrated_files):
    findings = [f for f in model_run.review() if (f.check, f.file) == (case.check, case.file)]
    lines = [f.format() for f in findings]
    uncollected = model_run.uncollected_findings() if case == model_run.review_cases()[-1] else []
    if uncollected:
        lines.append(
            "the migration's files changed since step 6's tests were collected; "
            "rerun for one test each. Findings no test was collected for:"
        )
        lines.extend(f.format() for f in uncollected)
    if lines:
        pytest.fail("\n".join(lines), pytrace=False)
