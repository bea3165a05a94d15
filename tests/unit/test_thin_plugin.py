"""The plugin loads only the standard library, pytest and its option table unless it migrates."""

from __future__ import annotations

import subprocess
import sys

#: What a pytest run that migrates nothing must never import.
WORK = (
    "libcst",
    "git",
    "filelock",
    "requests",
    "paramiko",
    "pytest_flmigrate.index.symbols",
    "pytest_flmigrate.run",
    "pytest_flmigrate.session",
    "pytest_flmigrate.steps.register",
)

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
        "--model",
        "tiny",
        "--plugin-dir",
        str(plugin_tree),
        "--upstream",
        str(upstream),
        "--pinned",
        str(pinned),
        "-p",
        "no:cacheprovider",
        "-m",
        "not runtime",
        "--collect-only",
        "-q",
        "-s",
    )
    result.stdout.fnmatch_lines(["*session plugin: True*"])


#: What a `-k e2e` run on saved results must not import: the static steps' work (step 6's
#: planning, indexes, libcst) and the GT's ssh client.
STATIC_WORK = (
    "libcst",
    "git",
    "paramiko",
    "pytest_flmigrate.index.symbols",
    "pytest_flmigrate.index.store",
    "pytest_flmigrate.autofix",
    "pytest_flmigrate.steps.migrate",
    "pytest_flmigrate.steps.discover",
    "pytest_flmigrate.steps.register",
    "pytest_flmigrate.review",
)

LOADED_AT_EXIT = f"""
import sys

def pytest_sessionfinish(session):
    work = {STATIC_WORK!r}
    loaded = sorted(m for m in sys.modules if any(m == w or m.startswith(w + ".") for w in work))
    print("static work loaded:", loaded)
"""


def save_matching_results(e2e_dir) -> None:
    """Saved GT and local results of every text prompt, the same tokens on both sides."""
    from pytest_flmigrate.e2e.generation import Generation
    from pytest_flmigrate.e2e.prompts import prompts_for
    from pytest_flmigrate.e2e.results import SIDES, ResultStore

    store, tokens = ResultStore(e2e_dir), ["a", "b", "c"]
    generation = Generation(
        model="m", text="abc", token_ids=[1, 2, 3], tokens=tokens, top_logprobs=[{token: -0.1} for token in tokens]
    )
    for prompt in prompts_for(None, "text"):
        for side in SIDES:
            store.save(side, prompt, generation, {}, {"url": "saved"})


def test_e2e_compare_imports_no_static_work(pytester, plugin_tree, trees):
    """`-k e2e` collects every step's module and step 6's cases (saved by the last review), yet
    imports none of the static steps' work: its start-up stays that of pytest itself."""
    from pytest_flmigrate.steps import review_cases

    reports = plugin_tree / "reports" / "tiny"
    review_cases.save(reports, [review_cases.Case("bare-except", "vllm_fl/models/tiny.py")])
    save_matching_results(reports / "e2e")
    pytester.makeconftest(LOADED_AT_EXIT)
    upstream, pinned = trees
    result = pytester.runpytest_subprocess(
        "--model",
        "tiny",
        "--plugin-dir",
        str(plugin_tree),
        "--upstream",
        str(upstream),
        "--pinned",
        str(pinned),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "-k",
        "e2e",
        "--e2e-phase",
        "compare",
        "-s",
    )
    result.stdout.fnmatch_lines(["*static work loaded: []"])
    result.assert_outcomes(passed=5, deselected=22)
