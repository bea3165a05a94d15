"""Shared fixtures of pytest-flmigrate's own tests."""

from __future__ import annotations

import concurrent.futures.process  # noqa: F401  (see below)
import importlib
import multiprocessing.popen_spawn_posix  # noqa: F401
import multiprocessing.queues  # noqa: F401
import multiprocessing.resource_tracker  # noqa: F401
import multiprocessing.synchronize  # noqa: F401
import os
import shutil
from pathlib import Path

import pytest

from pytest_flmigrate.index import sources
from tests import tiers
from tests.fixtures import synthetic
from tests.fixtures.pypi_server import pypi  # noqa: F401 - the recorded PyPI, for any test

REPO = Path(__file__).parent
EXAMPLE_PLUGIN = REPO / "examples" / "plugin-fl-mini"
# A migration run from an editable install collects the suite from under this folder, so pytest
# loads this file for the suite's steps too: they are a user's run, not tests to isolate.
SUITE = REPO / "pytest_flmigrate" / "suite"
# The shared cache, resolved now: pytester points HOME at a temporary folder, which would give
# in-process runs an empty cache (and rebuild every index) if it were resolved later.
SHARED_CACHE = sources.cache_dir()
HUB_OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
#: Imported before pytest's own tests run, for the in-process pytester runs: a migration session
#: imports the work (libcst among it) only in the steps that need it, and a run drops the modules
#: it imported; a second import of libcst would not match the classes its native parser keeps
#: from the first. The process pool's modules are imported above for the same reason: an index
#: built over the cores inside an in-process run pickles the pool's worker function, which must
#: be the one in sys.modules.
WORK_MODULES = (
    "pytest_flmigrate.autofix.planner",
    "pytest_flmigrate.steps.migrate",
    "pytest_flmigrate.steps.register",
    "pytest_flmigrate.steps.registrations",
    "pytest_flmigrate.review",
    "pytest_flmigrate.runtime_run",
)


def pytest_configure(config: pytest.Config) -> None:
    """Not in a user's migration run (this file is the suite's conftest too under an editable
    install): there the steps import what they need, and `-k e2e` imports none of it."""
    if not config.getoption("flm_model", None):
        for module in WORK_MODULES:
            importlib.import_module(module)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test under a tier's folder carries the tier's marker (tests/tiers.py), before `-m`
    selects."""
    for item in items:
        marker = tiers.folder_marker(item.path)
        if marker is not None:
            item.add_marker(marker)


@pytest.hookimpl(optionalhook=True)  # a run with -p no:xdist has no such hook
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """On xdist workers, the tests' units of work (tests/tiers.py), unless ``--dist`` asks for another
    scheduling; not in a user's migration run, which schedules by model (pytest_flmigrate/parallel.py)."""
    if config.getoption("flm_model", None) or config.getoption("dist") != "load":
        return None
    return tiers.TierScheduling(config, log)


def pytest_collection_finish(session: pytest.Session) -> None:
    """scripts/test asks (with --collect-only) whether a selection holds runtime tests, to
    provision the CPU vLLM envs only then."""
    probe = os.environ.get("FLMIGRATE_SELECTION_PROBE")
    if probe:
        selected = any(item.get_closest_marker("runtime") for item in session.items)
        Path(probe).write_text("runtime\n" if selected else "", encoding="utf-8")


@pytest.fixture
def plugin_tree(tmp_path: Path) -> Path:
    """A fresh copy of the example plugin checkout (a small vllm_fl package of our own)."""
    target = tmp_path / "plugin"
    shutil.copytree(EXAMPLE_PLUGIN, target)
    return target


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, request) -> None:
    """Fast tests get a cache of their own; integration tests share the real one (downloads).

    Runtime tests serve local checkpoints only: their vLLM processes get the hub switched off.
    """
    if request.node.path.is_relative_to(SUITE):
        return
    if request.node.get_closest_marker("integration") is None and request.node.get_closest_marker("runtime") is None:
        monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path_factory.mktemp("cache")))
    else:
        monkeypatch.setenv("FLMIGRATE_CACHE", str(SHARED_CACHE))
    if request.node.get_closest_marker("runtime") is not None:
        for variable in HUB_OFFLINE:
            monkeypatch.setenv(variable, "1")


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    """(upstream, pinned) synthetic vLLM trees, each with a transformers beside it."""
    return synthetic.upstream_tree(tmp_path / "upstream"), synthetic.pinned_tree(tmp_path / "pinned")


@pytest.fixture
def flmigrate(pytester: pytest.Pytester, plugin_tree: Path):
    """Run ``pytest --model ...`` in-process against ``plugin_tree``; returns the RunResult.

    The suite's ``runtime`` tests (steps 1, 4 smoke, 5 resolution, 7-10: the pinned env's vLLM)
    are deselected unless the caller passes its own ``-m``; tests/runtime/ runs them for real.
    """

    def run(*args: str, plugin_dir: Path | None = None):
        return pytester.runpytest_inprocess(
            "--plugin-dir",
            str(plugin_dir or plugin_tree),
            "--reports-dir",
            str((plugin_dir or plugin_tree) / "reports"),
            "-p",
            "no:cacheprovider",
            "-q",
            "-m",
            "not runtime",
            *args,
        )

    return run
