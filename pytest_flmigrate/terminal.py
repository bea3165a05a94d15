"""Lines to the user's terminal from anywhere in a run: one function the plugin, the session and the
suite's fixtures share (stdlib and pytest only)."""

from __future__ import annotations

import contextlib
import sys

import pytest


def terminal_say(config: pytest.Config):
    """A function printing one line to the terminal, visible even while output is captured."""

    def say(message: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            if reporter is not None:
                if reporter._tw.width_of_current_line:  # after a row of progress dots: a line of its own
                    reporter.write("\n")
                reporter.write_line(f"flmigrate: {message}")
                reporter.flush()
            else:  # before the terminal reporter exists (pytest_configure)
                print(f"flmigrate: {message}", file=sys.stderr, flush=True)

    return say
