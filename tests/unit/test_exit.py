"""After pytest's summary line: a Ctrl-C in pytest's own cleanup (its garbage-collector passes)
ends a migration run with one line and exit status 130, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

INTERRUPTER = textwrap.dedent("""
    import os, signal, time
    import pytest

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(config):
        os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C while pytest cleans up
        time.sleep(30)
""")


def test_ctrl_c_during_pytests_cleanup_prints_one_line(plugin_tree: Path, trees, tmp_path: Path):
    (tmp_path / "interrupter.py").write_text(INTERRUPTER, encoding="utf-8")
    upstream_dir, pinned_dir = trees
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--model",
        "tiny",
        "--upstream",
        str(upstream_dir),
        "--pinned",
        str(pinned_dir),
        "--plugin-dir",
        str(plugin_tree),
        "-p",
        "no:cacheprovider",
        "-m",
        "not runtime",
        "-k",
        "upstream",
        "-p",
        "interrupter",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, cwd=plugin_tree, env=env, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert " 3 passed" in result.stdout, output  # the session ran and ended
    assert result.returncode == 130, output
    assert (
        "flmigrate: interrupted during pytest's cleanup; the session had ended and its reports are written"
        in result.stderr
    )
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert (plugin_tree / "reports" / "tiny" / "summary.json").is_file()
