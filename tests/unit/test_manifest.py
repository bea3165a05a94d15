"""Writes that never lose a hand edit."""

from __future__ import annotations

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.manifest import Manifest, atomic_write

RECORD = {"model": "tiny"}


def test_created_then_unchanged_then_updated(tmp_path):
    manifest = Manifest(tmp_path)
    assert manifest.write("vllm_fl/models/a.py", "one\n", RECORD, force=False).status == "created"
    assert manifest.write("vllm_fl/models/a.py", "one\n", RECORD, force=False).status == "unchanged"
    assert manifest.write("vllm_fl/models/a.py", "two\n", RECORD, force=False).status == "updated"
    manifest.save()
    assert Manifest(tmp_path).entries["vllm_fl/models/a.py"]["model"] == "tiny"


def test_hand_edit_is_refused_before_anything_is_written(tmp_path):
    manifest = Manifest(tmp_path)
    manifest.write("a.py", "generated\n", RECORD, force=False)
    manifest.save()
    (tmp_path / "a.py").write_text("generated\n# mine\n")
    fresh = Manifest(tmp_path)
    with pytest.raises(FlmigrateError, match=r"^a.py differs from what flmigrate last wrote"):
        fresh.check_writable({"b.py": "new\n", "a.py": "regenerated\n"}, force=False)
    assert not (tmp_path / "b.py").exists()
    assert (tmp_path / "a.py").read_text() == "generated\n# mine\n"


def test_file_the_tool_never_wrote_counts_as_hand_made(tmp_path):
    (tmp_path / "a.py").write_text("written by a person\n")
    assert Manifest(tmp_path).hand_edited("a.py", "generated\n")
    assert not Manifest(tmp_path).hand_edited("a.py", "written by a person\n")


def test_force_keeps_a_backup(tmp_path):
    (tmp_path / "a.py").write_text("written by a person\n")
    outcome = Manifest(tmp_path).write("a.py", "generated\n", RECORD, force=True)
    assert outcome.status == "forced"
    assert (tmp_path / outcome.backup).read_text() == "written by a person\n"
    assert (tmp_path / "a.py").read_text() == "generated\n"


def test_atomic_write_leaves_no_temporary_file_and_keeps_mode(tmp_path):
    target = tmp_path / "x" / "script.py"
    atomic_write(target, "a\n")
    target.chmod(0o755)
    atomic_write(target, "b\n")
    assert target.read_text() == "b\n" and target.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in target.parent.iterdir()] == ["script.py"]
