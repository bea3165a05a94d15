"""The test tiers (tests/tiers.py): folders and markers agree, the fast tier's selection is exactly
its folders minus `remote`, the runtime tests that share fixtures share an xdist worker, every
marker is registered without the plugin, and scripts/test runs a tier by its name on two workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_flmigrate import plugin
from pytest_flmigrate.settings import tomllib
from tests import tiers

REPO = tiers.REPO
#: Loaded into the collecting pytest: every test's folder, markers and whether the selection kept it.
PROBE = """
import json, os
ITEMS = []

def record(items, selected):
    for item in items:
        group = item.get_closest_marker("xdist_group")
        ITEMS.append({"path": str(item.path), "name": item.name, "markers": sorted({m.name for m in item.iter_markers()}),
                      "selected": selected, "fixtures": list(item.fixturenames),
                      "group": group.args[0] if group is not None else None})

def pytest_deselected(items):
    record(items, False)

def pytest_collection_finish(session):
    record(session.items, True)
    with open(os.environ["TIERS_PROBE_OUT"], "w") as out:
        json.dump(ITEMS, out)
"""


def folder_of(path: str) -> str:
    return "/".join(Path(path).relative_to(REPO).parts[:2])


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Every test of the tree, collected with the fast tier's arguments and without the plugin (as
    with the package not installed): --strict-markers fails the collection on an unregistered
    marker."""
    folder = tmp_path_factory.mktemp("probe")
    (folder / "tiers_probe.py").write_text(PROBE, encoding="utf-8")
    out = folder / "items.json"
    env = {**os.environ, "PYTHONPATH": str(folder), "TIERS_PROBE_OUT": str(out)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:flmigrate", "-p", "no:cacheprovider"]
        + ["-p", "tiers_probe", *tiers.arguments("fast"), "tests"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


def test_every_test_lives_in_a_tier_folder(collected):
    folders = {folder_of(item["path"]) for item in collected}
    assert folders <= set(tiers.FAST_FOLDERS) | set(tiers.FOLDER_MARKERS)
    assert folders >= set(tiers.FAST_FOLDERS) | set(tiers.FOLDER_MARKERS)


def test_folders_and_markers_agree(collected):
    for item in collected:
        folder = folder_of(item["path"])
        for tier_folder, marker in tiers.FOLDER_MARKERS.items():
            assert (marker in item["markers"]) == (folder == tier_folder), (item["path"], item["markers"])


def test_the_fast_tier_is_its_folders_minus_remote(collected):
    for item in collected:
        fast = folder_of(item["path"]) in tiers.FAST_FOLDERS and "remote" not in item["markers"]
        assert item["selected"] == fast, item
    remote = {folder_of(item["path"]) for item in collected if "remote" in item["markers"]}
    assert remote == {"tests/e2e", "tests/runtime"}  # the tier cuts across folders


def test_runtime_tests_that_share_servers_share_a_worker(collected):
    """A runtime module is one unit of work (its tests share servers and tiny models); every test
    using the session's migrated tree is in the one unit of the modules that share it, and so are
    the two modules that serve the tiny mistral's control; a test of another tier is a unit of its
    own, for any worker."""
    shared = {module: unit for unit, modules in tiers.SHARED_UNITS.items() for module in modules}
    for item in collected:
        nodeid = Path(item["path"]).relative_to(REPO).as_posix() + "::" + item["name"]
        module = nodeid.split("::")[0]
        if "migrated" in item["fixtures"]:
            assert shared.get(module) == "the migrated tree", nodeid
        if module in shared:
            assert tiers.scope(nodeid) == shared[module], nodeid
        elif folder_of(item["path"]) == tiers.RUNTIME_FOLDER:
            assert tiers.scope(nodeid) == module, nodeid
        else:
            assert tiers.scope(nodeid) == nodeid, nodeid


def test_two_workers_run_a_runtime_modules_tests_on_one_of_them(pytester):
    """The scheduler over a runtime module and fast tests, on two workers: every test of the runtime
    module runs on one worker, while the other worker runs fast ones."""
    pytester.makeconftest(
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('tiers_under_test', {str(REPO / 'tests' / 'tiers.py')!r})\n"
        "tiers = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(tiers)\n"
        "def pytest_xdist_make_scheduler(config, log):\n"
        "    return tiers.TierScheduling(config, log)\n"
    )
    record = (
        "import os, pathlib, time\n"
        "def ran(name):\n"
        "    time.sleep(0.3)\n"
        "    pathlib.Path(os.environ['RAN'], name).write_text(os.environ['PYTEST_XDIST_WORKER'])\n"
    )
    for folder, module in (("tests/runtime", "shared"), ("tests/unit", "fast")):
        (pytester.path / folder).mkdir(parents=True)
        tests = "".join(f"def test_{i}():\n    ran('{module}-{i}')\n" for i in range(6))
        (pytester.path / folder / f"test_{module}.py").write_text(record + tests)
    ran = pytester.mkdir("ran")
    pytester._monkeypatch.setenv("RAN", str(ran))
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "-p", "no:flmigrate")
    result.assert_outcomes(passed=12)
    workers = {path.name: path.read_text() for path in ran.iterdir()}
    assert len({workers[f"shared-{i}"] for i in range(6)}) == 1, workers
    assert len(set(workers.values())) == 2, workers  # the fast ones went to the other worker too


def test_every_marker_is_registered_in_pyproject_as_the_plugin_registers_it():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    registered = config["tool"]["pytest"]["ini_options"]["markers"]
    assert set(plugin.MARKERS) <= set(registered)
    names = {line.split(":")[0].split("(")[0] for line in registered}
    assert names == {"step", "e2e", *tiers.SLOW_MARKERS}


def test_tiers_print_their_arguments_and_refuse_an_unknown_name():
    ran = subprocess.run(
        [sys.executable, "-m", "tests.tiers", "fast"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0 and ran.stdout.splitlines() == ["-m", "not integration and not runtime and not remote"]
    bad = subprocess.run(
        [sys.executable, "-m", "tests.tiers", "slow"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == "tests.tiers: expected one tier name of fast, integration, runtime, remote"


#: What scripts/test puts before the caller's arguments: two xdist workers.
WORKERS = ["-n", "2"]


def fake_checkout(tmp_path: Path) -> Path:
    """scripts/test in a checkout whose venv's tools do nothing but pytest, which records its
    arguments (tests.tiers is the real one)."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "scripts" / "test").write_bytes((REPO / "scripts" / "test").read_bytes())
    (checkout / "scripts" / "test").chmod(0o755)
    (checkout / "tests").symlink_to(REPO / "tests")
    tools = checkout / ".venv" / "bin"
    tools.mkdir(parents=True)
    for tool in ("pip", "ruff", "mypy"):
        (tools / tool).write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    (tools / "python").write_text(
        "#!/usr/bin/env bash\n"
        f'if [ "$2" = pytest ]; then shift 2; printf "%s\\n" "$@" > "{checkout}/pytest-args"; exit 0; fi\n'
        f'exec {sys.executable} "$@"\n',
        encoding="utf-8",
    )
    for tool in tools.iterdir():
        tool.chmod(0o755)
    return checkout


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["fast", "-x"], [*WORKERS, "-m", tiers.FAST, "-x"]),
        (["runtime"], [*WORKERS, "-m", "runtime"]),
        (["tests/unit", "-k", "fast"], [*WORKERS, "tests/unit", "-k", "fast"]),
        ([], WORKERS),
    ],
)
def test_scripts_test_runs_a_tier_by_its_name(tmp_path, given, expected):
    checkout = fake_checkout(tmp_path)
    ran = subprocess.run(
        [str(checkout / "scripts" / "test"), *given],
        env={**os.environ, "FLMIGRATE_PROVISION": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert (checkout / "pytest-args").read_text(encoding="utf-8").splitlines() == expected
