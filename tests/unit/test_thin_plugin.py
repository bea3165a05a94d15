"""The plugin loads only the standard library, pytest and its option table unless it migrates."""

from __future__ import annotations

import subprocess
import sys

#: What a pytest run that migrates nothing must never import.
WORK = ("libcst", "git", "filelock", "requests", "paramiko", "pytest_flmigrate.index.symbols",
        "pytest_flmigrate.run", "pytest_flmigrate.session", "pytest_flmigrate.register")

CHECK = f"""
import sys
WORK = {WORK!r}

def loaded():
    return sorted(name for name in sys.modules if any(name == w or name.startswith(w + ".") for w in WORK))

def test_nothing_of_the_work_is_imported():
    assert loaded() == []
"""


def test_loading_the_plugin_module_imports_no_work():
    code = f"import sys, pytest_flmigrate.plugin; print(sorted(m for m in sys.modules if m.split('.')[0] in {WORK!r} or m in {WORK!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_pytest_run_without_model_imports_no_work(pytester):
    pytester.makepyfile(test_other=CHECK)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:pytester")
    result.assert_outcomes(passed=1)
    assert "--model" in pytester.runpytest_subprocess("--help").stdout.str()  # the options are there


def test_model_registers_the_migration_session(pytester, plugin_tree, trees):
    pytester.makeconftest(
        "def pytest_collection_finish(session):\n"
        "    print('session plugin:', session.config.pluginmanager.has_plugin('flmigrate-session'))\n"
    )
    upstream, pinned = trees
    result = pytester.runpytest_inprocess(
        "--model", "tiny", "--plugin-dir", str(plugin_tree), "--upstream", str(upstream),
        "--pinned", str(pinned), "-p", "no:cacheprovider", "-m", "not runtime", "--collect-only", "-q", "-s",
    )
    result.stdout.fnmatch_lines(["*session plugin: True*"])
