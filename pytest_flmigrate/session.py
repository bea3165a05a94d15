"""The hooks of a migration session, registered by plugin.py only when ``--model`` is given.

Everything here may import the work (trees, indexes, libcst, git): a pytest run that migrates
nothing never loads this module.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
from collections.abc import Callable

import pytest

from pytest_flmigrate import progress
from pytest_flmigrate.errors import EnvironmentProblem, FlmigrateError
from pytest_flmigrate.report import write_reports
from pytest_flmigrate.run import Workspace
from pytest_flmigrate.settings import Settings
from pytest_flmigrate.steps import STEPS
from pytest_flmigrate.terminal import terminal_say

WORKSPACE = pytest.StashKey[Workspace]()
BLOCKED = pytest.StashKey[str]()
#: The attribute of a test report carrying an xdist worker's progress lines to the controller.
WORKER_LINES = "flmigrate_lines"


def workspace_of(config: pytest.Config) -> Workspace:
    """The session's workspace (the suite runs only in a migration session, so it exists)."""
    return config.stash[WORKSPACE]


def step_of(item: pytest.Item) -> int | None:
    marker = item.get_closest_marker("step")
    return int(marker.args[0]) if marker else None


def model_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("model_run") if callspec else None


class MigrationSession:
    """Step blocking, step records and JUnit properties, reports, and the terminal summary."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.workspace = Workspace(settings)
        config.stash[WORKSPACE] = self.workspace
        self.terminal_lines: dict[str, list[str]] = {}  # model -> its lines in the terminal summary
        # id of a FlmigrateError -> the error (kept alive, so its id is never reused) and the test that showed it
        self.reported: dict[int, tuple[FlmigrateError, str]] = {}
        self.say = terminal_say(config)
        self.is_worker = hasattr(config, "workerinput")
        # an xdist worker's terminal is nobody's: its lines wait for the next test report
        self.worker_lines: list[str] = []
        sink = self.worker_lines.append if self.is_worker else self.say
        config.add_cleanup(progress.use(sink, quiet=config.get_verbosity() < 0))
        # a SIGTERM (a CI job cancelled, kill, a timeout) ends the run as Ctrl-C does: pytest unwinds,
        # the session fixtures tear down and the servers this run started stop
        config.add_cleanup(handle_signal(signal.SIGTERM, _terminated))
        self.step_times = progress.StepTimes()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log):
        """With pytest-xdist, schedule each model's tests as one unit (see parallel.py)."""
        from pytest_flmigrate.parallel import ModelScheduling

        return ModelScheduling(config, log, models=frozenset(self.workspace.settings.model))

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            step, model = step_of(item), model_of(item)
            if step is not None:
                item.user_properties.append(("step", str(step)))
            if model is not None:
                item.user_properties.append(("model", model))

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        step, model = step_of(item), model_of(item)
        if step is None or model is None:
            return
        blocker = self.workspace.run_for(model).blocking(STEPS[step].depends, STEPS[step].in_env)
        if blocker:
            number, reason = blocker
            first_line = reason.splitlines()[0] if reason else STEPS[number].name
            item.stash[BLOCKED] = f"blocked by step {number}: {first_line}"
            pytest.skip(item.stash[BLOCKED])

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        if self.worker_lines:
            setattr(report, WORKER_LINES, self.worker_lines[:])
            self.worker_lines.clear()
        step, model = step_of(item), model_of(item)
        if step is None or model is None:
            return report
        if call.excinfo is not None and isinstance(call.excinfo.value, FlmigrateError):
            # a step's tests share its memoized error: the first shows it, the others point there
            error = call.excinfo.value
            _, first = self.reported.setdefault(id(error), (error, item.nodeid))
            report.longrepr = str(error) if first == item.nodeid else f"the error of {first}, above"
        run = self.workspace.run_for(model)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome, reason = _outcome(item, report)
            environment = call.excinfo is not None and isinstance(call.excinfo.value, EnvironmentProblem)
            run.record(step, STEPS[step].name, outcome, reason, report.duration, environment)
        elif report.when == "setup":
            run.record_time(step, STEPS[step].name, report.duration)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """In the process that prints (the xdist controller receives every worker's reports):
        a worker's progress lines, and a line for each slow step of a model once it is over."""
        if self.is_worker:
            return
        for line in getattr(report, WORKER_LINES, ()):
            self.say(line)
        properties = dict(report.user_properties)
        step, model = properties.get("step"), properties.get("model")
        if isinstance(step, str) and isinstance(model, str):  # as pytest_collection_modifyitems set them
            self.step_times.add(model, int(step), report.duration)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.step_times.finish()
        for run in self.workspace.runs.values():
            if run.steps:  # only models whose tests ran here (an xdist worker collects them all)
                self.terminal_lines[run.name] = write_reports(run).terminal_lines()
        config = session.config
        if hasattr(config, "workeroutput"):  # an xdist worker: the controller prints them
            config.workeroutput["flmigrate_terminal_lines"] = self.terminal_lines

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        """On the xdist controller: the terminal lines of the models a worker ran."""
        self.terminal_lines.update(getattr(node, "workeroutput", {}).get("flmigrate_terminal_lines", {}))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        """Per model whose tests ran: its steps, where its report is (or why it is not) and its backups."""
        if not self.terminal_lines:
            return
        terminalreporter.section("flmigrate")
        for model in self.workspace.settings.model:
            for line in self.terminal_lines.get(model, ()):
                terminalreporter.write_line(line)

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Before pytest's own cleanup, which runs the garbage collector over every live object
        (its unraisableexception plugin): the session's objects (indexes, plans) are frozen out of
        the collector's reach, and a Ctrl-C from here on ends the run with one line, not a
        traceback (the session is over and its reports are written)."""
        gc.freeze()
        config.add_cleanup(handle_signal(signal.SIGINT, _interrupted_in_cleanup))


def handle_signal(signum: signal.Signals, handler: Callable[[int, object], None]) -> Callable[[], None]:
    """Install ``handler`` for ``signum``; the function restoring the previous one (a no-op off the
    main thread, where no handler can be set)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signum, handler)

    def restore() -> None:
        signal.signal(signum, previous)

    return restore


def _terminated(signum: int, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise KeyboardInterrupt("SIGTERM: stopping the servers this run started")


def _interrupted_in_cleanup(signum: int, frame) -> None:
    print(
        "flmigrate: interrupted during pytest's cleanup; the session had ended and its reports are written",
        file=sys.stderr,
        flush=True,
    )
    raise SystemExit(130)


def _outcome(item: pytest.Item, report: pytest.TestReport) -> tuple[str, str]:
    if BLOCKED in item.stash:
        return "blocked", item.stash[BLOCKED]
    if report.skipped:
        return "skipped", report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if report.failed:
        text = report.longreprtext.strip()
        return "failed", _reason(text)
    return "passed", ""


def _reason(text: str) -> str:
    """The first meaningful line of a failure: the error line, not the traceback."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("E "):
            return stripped[1:].strip()
    return text.splitlines()[0] if text else ""
