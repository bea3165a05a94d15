"""Atomic writes of files and folders (pytest_flmigrate/atomic.py), the one home of the mechanism:
old or new content, never half, and nothing left behind when a write fails."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_flmigrate import atomic
from pytest_flmigrate.tiny import qwen2_checkpoint


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_new_file_gets_the_umasks_mode_and_a_replaced_one_keeps_its_own(tmp_path):
    target = tmp_path / "sub" / "a.json"
    previous = os.umask(0o027)
    try:
        atomic.write(target, "één\n")
    finally:
        os.umask(previous)
    assert target.read_bytes() == "één\n".encode() and stat.S_IMODE(target.stat().st_mode) == 0o640
    target.chmod(0o755)
    atomic.write(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01" and stat.S_IMODE(target.stat().st_mode) == 0o755
    assert listing(target.parent) == ["a.json"]


def test_a_block_that_raises_leaves_the_file_as_it_was(tmp_path):
    target = tmp_path / "store.db"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.replacing(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old" and listing(tmp_path) == ["store.db"]


def test_a_file_that_cannot_be_written_raises_and_leaves_nothing(tmp_path):
    (tmp_path / "taken").mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(OSError):
        atomic.write(tmp_path / "taken", "text")
    assert listing(tmp_path) == ["taken"]


def test_a_folder_replaces_an_older_one_whole(tmp_path):
    target = tmp_path / "tree"
    with atomic.folder(target) as work:
        (work / "a").write_text("1")
    with atomic.folder(target) as work:
        assert not target.joinpath("b").exists() and listing(work) == []
        (work / "b").write_text("2")
    assert listing(target) == ["b"] and listing(tmp_path) == ["tree"]


def test_a_folder_whose_block_raises_leaves_the_older_one(tmp_path):
    target = tmp_path / "tree"
    target.mkdir()
    (target / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic.folder(target) as work:
        (work / "half").write_text("")
        raise RuntimeError("interrupted")
    assert listing(target) == ["a"] and listing(tmp_path) == ["tree"]


def test_a_folder_that_cannot_be_renamed_in_puts_the_older_one_back(tmp_path, monkeypatch):
    target = tmp_path / "tree"
    target.mkdir()
    (target / "a").write_text("1")
    rename = Path.rename

    def refuse_the_new(self, destination):
        if self.name.startswith(".tree.new"):
            raise OSError(28, "No space left on device")
        return rename(self, destination)

    monkeypatch.setattr(Path, "rename", refuse_the_new)
    with pytest.raises(OSError), atomic.folder(target) as work:
        (work / "b").write_text("2")
    assert listing(target) == ["a"] and listing(tmp_path) == ["tree"]


def test_the_checkpoint_script_uses_it_without_the_package(tmp_path):
    """qwen2_checkpoint.py runs as a script in a vLLM env where this package is not installed: it
    loads atomic.py by its path (``-S``: no site-packages, so no installed pytest_flmigrate)."""
    script = Path(qwen2_checkpoint.__file__)
    probe = (
        "import runpy, sys; module = runpy.run_path(sys.argv[1]); "
        "print(module['atomic'].__file__); print('pytest_flmigrate' in sys.modules)"
    )
    ran = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [atomic.__file__, "False"]
    helped = subprocess.run(
        [sys.executable, "-S", str(script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0 and "OUT_DIR" in helped.stdout.upper(), helped.stderr
