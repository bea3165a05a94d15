"""The pytest plugin's entry point: options and markers; a migration session only with a model.

At load this module imports only the standard library, pytest and the option table, so a pytest
run that migrates nothing pays for nothing (tested). With ``--model`` (or plain ``pytest``, no
test paths, in a checkout whose ``[tool.flmigrate]`` names a ``model``) it registers
``session.MigrationSession`` (the hooks that do the work) and collects the migration suite
(``suite/``) instead of the given paths; ``--stop-servers`` alone stops kept servers and exits.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.settings import OPTIONS, add_options, configured_models, resolve
from pytest_flmigrate.terminal import terminal_say

SUITE_DIR = Path(__file__).parent / "suite"
SESSION_PLUGIN = "flmigrate-session"
MARKERS = (
    "step(n): the migration step this test verifies (docs/procedure.md)",
    "e2e: token comparison against a ground-truth server (step 11)",
    "runtime: runs real vLLM processes (in the suite: the env of --vllm-python)",
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
    from pytest_flmigrate.session import MigrationSession

    config.pluginmanager.register(MigrationSession(config, settings), SESSION_PLUGIN)
    config.args[:] = [str(SUITE_DIR)]
    if settings.stop_servers and not hasattr(config, "workerinput"):
        stop_kept_servers(config)


def stop_kept_servers(config: pytest.Config) -> None:
    """--stop-servers: end the servers earlier runs kept for this plugin checkout (their state
    files name them)."""
    from pytest_flmigrate.steps.serve import stop_kept

    stop_kept(terminal_say(config), plugin_dir_of(config))


def plugin_dir_of(config: pytest.Config) -> Path:
    """--plugin-dir as given (default: where pytest was started), before settings are resolved."""
    return Path(config.invocation_params.dir) / (config.getoption("flm_plugin_dir") or ".")
