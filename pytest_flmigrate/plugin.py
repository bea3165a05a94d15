"""pytest hooks of pytest-flmigrate: options, markers, collecting the suite, step blocking, summary.

Without ``--model`` the plugin only registers its options and markers and stays out of the
way. With it, the run collects the migration suite (``suite/``) instead of the given paths;
plain ``pytest`` (no test paths) in a checkout whose ``[tool.flmigrate]`` names a ``model``
does the same.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import sys
import threading
from pathlib import Path

import pytest

from pytest_flmigrate import progress
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.report import write_reports
from pytest_flmigrate.run import Workspace
from pytest_flmigrate.settings import OPTIONS, add_options, configured_models, resolve
from pytest_flmigrate.steps import STEPS

SUITE_DIR = Path(__file__).parent / "suite"
WORKSPACE = pytest.StashKey[Workspace]()
BLOCKED = pytest.StashKey[str]()
TERMINAL_LINES = pytest.StashKey[dict[str, list[str]]]()  # model -> its lines in the terminal summary
# id of a FlmigrateError -> the error (kept alive, so its id is never reused) and the test that showed it
REPORTED = pytest.StashKey[dict[int, tuple[FlmigrateError, str]]]()
MARKERS = (
    "step(n): the procedure step (procedure.md) this test verifies",
    "e2e: token comparison against a ground-truth server (step 11)",
    "gpu: needs a GPU; runs on CPU where the step allows it",
    "remote: talks to a remote machine over SSH",
    "runtime: runs in the env of --vllm-python (real vLLM subprocesses: tests, smoke, benchmark, server)",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser.getgroup("flmigrate", "migrate a model from upstream vLLM into vllm-plugin-FL"))


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    if not config.getoption("flm_model"):
        if config.getoption("flm_stop_servers"):
            stop_kept_servers(config)
            pytest.exit("--stop-servers: done", returncode=0)
        if config.args_source == pytest.Config.ArgsSource.ARGS:
            return  # test paths given: run them, whatever [tool.flmigrate] holds
        try:
            models = configured_models(plugin_dir_of(config))
        except FlmigrateError as exc:
            raise pytest.UsageError(str(exc)) from None
        if not models:
            return
        config.option.flm_model = list(models)  # as if given: xdist workers get it with the options
    given = {option.key: config.getoption(option.dest) for option in OPTIONS}
    try:
        settings = resolve(given, Path(config.invocation_params.dir))
    except FlmigrateError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[WORKSPACE] = Workspace(settings)
    config.add_cleanup(progress.use(terminal_say(config), quiet=config.get_verbosity() < 0))
    config.args[:] = [str(SUITE_DIR)]
    if settings.stop_servers and not hasattr(config, "workerinput"):
        stop_kept_servers(config)


def terminal_say(config: pytest.Config):
    """A function printing one line to the terminal, visible even while output is captured."""

    def say(message: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            if reporter is not None:
                reporter.write_line(f"flmigrate: {message}")
                reporter.flush()
            else:  # before the terminal reporter exists (pytest_configure)
                print(f"flmigrate: {message}", file=sys.stderr, flush=True)

    return say


def stop_kept_servers(config: pytest.Config) -> None:
    """--stop-servers: end the servers earlier runs kept for this plugin checkout (their state
    files name them)."""
    from pytest_flmigrate.runtime.server import stop_kept

    stop_kept(terminal_say(config), plugin_dir_of(config))


def plugin_dir_of(config: pytest.Config) -> Path:
    """--plugin-dir as given (default: where pytest was started), before settings are resolved."""
    return Path(config.invocation_params.dir) / (config.getoption("flm_plugin_dir") or ".")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """With pytest-xdist, schedule each model's tests as one unit (see parallel.py)."""
    workspace = workspace_of(config)
    if workspace is None:
        return None
    from pytest_flmigrate.parallel import ModelScheduling

    return ModelScheduling(config, log, models=frozenset(workspace.settings.model))


def workspace_of(config: pytest.Config) -> Workspace | None:
    return config.stash.get(WORKSPACE, None)


def step_of(item: pytest.Item) -> int | None:
    marker = item.get_closest_marker("step")
    return int(marker.args[0]) if marker else None


def model_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("model_run") if callspec else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if workspace_of(config) is None:
        return
    for item in items:
        step, model = step_of(item), model_of(item)
        if step is not None:
            item.user_properties.append(("step", str(step)))
        if model is not None:
            item.user_properties.append(("model", model))


def pytest_runtest_setup(item: pytest.Item) -> None:
    workspace = workspace_of(item.config)
    step, model = step_of(item), model_of(item)
    if workspace is None or step is None or model is None:
        return
    blocker = workspace.run_for(model).blocking(STEPS[step].depends)
    if blocker:
        number, reason = blocker
        first_line = reason.splitlines()[0] if reason else STEPS[number].name
        item.stash[BLOCKED] = f"blocked by step {number}: {first_line}"
        pytest.skip(item.stash[BLOCKED])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    workspace = workspace_of(item.config)
    step, model = step_of(item), model_of(item)
    if workspace is None or step is None or model is None:
        return report
    if call.excinfo is not None and isinstance(call.excinfo.value, FlmigrateError):
        # a step's tests share its memoized error: the first shows it, the others point there
        error = call.excinfo.value
        _, first = item.config.stash.setdefault(REPORTED, {}).setdefault(id(error), (error, item.nodeid))
        report.longrepr = str(error) if first == item.nodeid else f"the error of {first}, above"
    run = workspace.run_for(model)
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome, reason = _outcome(item, report)
        run.record(step, STEPS[step].name, outcome, reason, report.duration)
    elif report.when == "setup":
        run.record_time(step, STEPS[step].name, report.duration)
    return report


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


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    workspace = workspace_of(config)
    if workspace is None:
        return
    lines = config.stash.setdefault(TERMINAL_LINES, {})
    for run in workspace.runs.values():
        if run.steps:  # only models whose tests ran here (an xdist worker collects them all)
            lines[run.name] = write_reports(run).terminal_lines()
    if hasattr(config, "workeroutput"):  # an xdist worker: the controller prints them
        config.workeroutput["flmigrate_terminal_lines"] = lines


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """On the xdist controller: the terminal lines of the models a worker ran."""
    if workspace_of(node.config) is not None:
        lines = getattr(node, "workeroutput", {}).get("flmigrate_terminal_lines", {})
        node.config.stash.setdefault(TERMINAL_LINES, {}).update(lines)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """Per model whose tests ran: its steps, where its report is (or why it is not) and its backups."""
    workspace = workspace_of(config)
    lines = config.stash.get(TERMINAL_LINES, {})
    if workspace is None or not lines:
        return
    terminalreporter.section("flmigrate")
    for model in workspace.settings.model:
        for line in lines.get(model, ()):
            terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Before pytest's own cleanup, which runs the garbage collector over every live object
    (its unraisableexception plugin): the session's objects (indexes, plans) are frozen out of
    the collector's reach, and a Ctrl-C from here on ends the run with one line, not a
    traceback (the session is over and its reports are written)."""
    if workspace_of(config) is None:
        return
    gc.freeze()
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, _interrupted_in_cleanup)
        config.add_cleanup(lambda: signal.signal(signal.SIGINT, previous))


def _interrupted_in_cleanup(signum: int, frame) -> None:
    print("flmigrate: interrupted during pytest's cleanup; the session had ended and its reports are written",
          file=sys.stderr, flush=True)
    raise SystemExit(130)
