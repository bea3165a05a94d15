"""Step 6's cases (a check on a file, one suite test each) as the last review of a model saved
them, so collecting the suite needs no plan.

Planning a migration (indexes, closure, fixes) to name step 6's tests made every collection as
slow as the migration itself, even ``-k e2e``. The review saves its (check, file) pairs beside
the model's reports; the next collection reads them. A missing, unreadable or outdated file
means planning once more, never a wrong case: findings whose pair was not collected are
reported by the model's last case (``test_step06_review``). This module sits outside review/
so reading the cases loads none of the checks (nor libcst): ``-k e2e`` pays nothing for step 6.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate.manifest import write_if_changed

FILE_NAME = "review-cases.json"
FORMAT = 1


@dataclass(frozen=True)
class Case:
    """One suite test: a check on a file. ``id`` reads ``unresolved-imports-vllm_fl/models/x.py``."""

    check: str
    file: str

    @property
    def id(self) -> str:
        return f"{self.check}-{self.file}"


def load(report_dir: Path) -> list[Case] | None:
    """The saved cases, or None when there are none this version can read."""
    try:
        data = json.loads((report_dir / FILE_NAME).read_text(encoding="utf-8"))
        if data["format"] != FORMAT:
            return None
        cases = [Case(check, file) for check, file in data["cases"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return cases or None


def save(report_dir: Path, cases: list[Case]) -> None:
    """Keep ``cases`` for the next collection; a reports dir that cannot be written only costs
    that collection a plan."""
    text = json.dumps({"format": FORMAT, "cases": [[case.check, case.file] for case in cases]}, indent=1) + "\n"
    try:
        write_if_changed(report_dir / FILE_NAME, text)
    except OSError:
        pass
