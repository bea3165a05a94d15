"""Steps 1, 7 and 8: the plugin's own tests, run by the pinned interpreter, read from JUnit XML.

The run is ``pytest <folder> -p no:flmigrate`` in the plugin checkout (our plugin stays out of
it even when it is installed there), with the environment of docs/cpu-vllm.md and a scratch TMPDIR.
Outcomes come from the JUnit XML file (``junit_family=xunit1``, whose ``file`` attribute gives
test ids as pytest prints them), never from parsing the console. A run is a function of the
checkout's files and the env: with ``memo`` (steps/kept.py) a finished run is kept, and replayed
(its JUnit file and log too) by a later run with the same inputs.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from pytest_flmigrate import envs
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers import procs
from pytest_flmigrate.steps import kept

#: Bound for one run of a plugin test folder.
TIMEOUT = 3600.0
# ``python -c`` puts the current folder (the plugin checkout) first on sys.path, which would
# import vllm_fl even when the plugin is not installed; the console script does not. Drop it.
_RUN_PYTEST = "import sys; del sys.path[0]; import pytest; raise SystemExit(pytest.console_main())"
# pytest's exit codes: 0 all passed, 1 some failed, 5 nothing collected.
_RAN = (0, 1, 5)
FAILING = ("failed", "error")


@dataclass(frozen=True)
class Case:
    id: str
    outcome: str  # passed, failed, error, skipped
    message: str = ""


@dataclass(frozen=True)
class TestRun:
    folder: str
    cases: tuple[Case, ...]
    exit_code: int
    seconds: float
    junit: str
    log: str
    replayed: bool = False  # kept from an earlier run with the same files and env

    __test__ = False  # not a pytest test class

    def count(self, outcome: str) -> int:
        return sum(case.outcome == outcome for case in self.cases)

    @property
    def failing(self) -> list[str]:
        return sorted({case.id for case in self.cases if case.outcome in FAILING})

    def counts(self) -> dict[str, int]:
        return {outcome: self.count(outcome) for outcome in ("passed", "failed", "error", "skipped")}

    def line(self) -> str:
        counts = self.counts()
        text = f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        return text + (f", {counts['error']} errors" if counts["error"] else "")

    def as_dict(self) -> dict:
        return {
            "folder": self.folder,
            **self.counts(),
            "total": len(self.cases),
            "failing": self.failing,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 2),
            "junit": self.junit,
            "log": self.log,
            **({"replayed": True} if self.replayed else {}),
        }

    def save(self, path: Path) -> None:
        data = {**asdict(self), "cases": [asdict(case) for case in self.cases]}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TestRun:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["cases"] = tuple(Case(**case) for case in data["cases"])
        return cls(**data)


def parse_junit(path: Path) -> tuple[Case, ...]:
    """Every test case of a JUnit XML file written by pytest."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise FlmigrateError(f"{path}: no readable JUnit XML ({exc})") from None
    cases = []
    for element in root.iter("testcase"):
        outcome, message = "passed", ""
        for child in element:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                message = (child.get("message") or "").splitlines()[0] if child.get("message") else ""
                if child.tag != "skipped":
                    break
        cases.append(Case(_case_id(element), outcome, message))
    return tuple(cases)


def _case_id(element: ET.Element) -> str:
    """``file::Class::name`` as pytest prints it (xunit1 gives ``file``; else the dotted classname)."""
    name = element.get("name", "")
    classname = element.get("classname", "")
    file = element.get("file")
    if file:
        module = file[:-3].replace("/", ".") if file.endswith(".py") else None
        inner = classname[len(module) + 1 :] if module and classname.startswith(module + ".") else ""
        parts = [file, *(inner.split(".") if inner else []), name]
        return "::".join(part for part in parts if part)
    return f"{classname}::{name}" if classname else name


def memo_path(plugin_dir: Path, env: dict, folder: str, cache: Path | None = None) -> Path:
    """Where a run of ``folder`` is kept: the plugin package's, the folder's and the checkout's
    metadata files, and ``env`` (what the pinned env is)."""
    inputs = {"folder": folder, "env": env, "files": kept.files(plugin_dir, (folder,))}
    return kept.path("plugin-tests", inputs, cache)


def _replay(memo: Path, junit: Path, log: Path) -> TestRun | None:
    data = kept.load(memo) or {}
    try:
        cases = tuple(Case(**case) for case in data["cases"])
        run = TestRun(data["folder"], cases, data["exit_code"], data["seconds"], str(junit), str(log), True)
        junit_text, log_text = data["junit_text"], data["log_text"]
    except (KeyError, TypeError):
        return None
    junit.parent.mkdir(parents=True, exist_ok=True)
    junit.write_text(junit_text, encoding="utf-8")
    log.write_text(log_text, encoding="utf-8")
    return run


def run_folder(
    python: str,
    plugin_dir: Path,
    folder: str,
    *,
    logs: Path,
    label: str,
    timeout: float = TIMEOUT,
    memo: Path | None = None,
) -> TestRun:
    """Run the plugin's ``folder`` (e.g. ``tests/unit_tests``) with ``python``; outcomes from JUnit XML."""
    junit = logs / f"{label}.xml"
    log = logs / f"{label}.log"
    junit.unlink(missing_ok=True)
    if memo is not None and (replayed := _replay(memo, junit, log)) is not None:
        return replayed
    command = [
        python,
        "-c",
        _RUN_PYTEST,
        folder,
        "-p",
        "no:flmigrate",
        "-p",
        "no:cacheprovider",
        "-o",
        "junit_family=xunit1",
        f"--junitxml={junit}",
        "-v",
        "--tb=short",
    ]
    finished = envs.run_logged(command, label=label, cwd=plugin_dir, log=log, timeout=timeout, what=f"pytest {folder}")
    if finished.returncode not in _RAN or not junit.exists():
        raise FlmigrateError(
            f"pytest {folder} in the pinned env exited {finished.returncode} without test results (log: {log})",
            procs.tail(log),
        )
    run = TestRun(folder, parse_junit(junit), finished.returncode, finished.seconds, str(junit), str(log))
    kept.save(
        memo,
        {
            **asdict(run),
            "cases": [asdict(case) for case in run.cases],
            "junit_text": junit.read_text(encoding="utf-8", errors="replace"),
            "log_text": log.read_text(encoding="utf-8", errors="replace"),
        },
    )
    return run


@dataclass(frozen=True)
class Regression:
    new: tuple[str, ...]  # failing now, passing (or absent) in the baseline
    preexisting: tuple[str, ...]  # failing in both
    fixed: tuple[str, ...]  # failing in the baseline, not now

    def as_dict(self) -> dict:
        return {"new_failures": list(self.new), "preexisting": list(self.preexisting), "fixed": list(self.fixed)}


def compare(baseline: TestRun, after: TestRun) -> Regression:
    before, now = set(baseline.failing), set(after.failing)
    return Regression(tuple(sorted(now - before)), tuple(sorted(now & before)), tuple(sorted(before - now)))
