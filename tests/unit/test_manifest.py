"""Records, pristine bases, atomic writes and backups of what the tool wrote."""

from __future__ import annotations

import json

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.manifest import Manifest, atomic_write, write_if_changed


def test_record_keeps_the_generated_base_and_both_digests(tmp_path):
    manifest = Manifest(tmp_path)
    assert manifest.base("vllm_fl/models/a.py") is None
    manifest.record("vllm_fl/models/a.py", "edited\n", "generated\n", {"model": "tiny"})
    manifest.save()
    reloaded = Manifest(tmp_path)
    assert reloaded.base("vllm_fl/models/a.py") == "generated\n"
    entry = reloaded.entries["vllm_fl/models/a.py"]
    assert entry["model"] == "tiny" and entry["sha256"] != entry["generated_sha256"]


def test_base_without_a_record_is_not_trusted(tmp_path):
    (tmp_path / ".flmigrate/base/a.py").parent.mkdir(parents=True)
    (tmp_path / ".flmigrate/base/a.py").write_text("stray\n")
    assert Manifest(tmp_path).base("a.py") is None


def test_backup_copies_the_file_under_backups(tmp_path):
    (tmp_path / "a.py").write_text("written by a person\n")
    backup = Manifest(tmp_path).backup("a.py")
    assert backup.startswith(".flmigrate/backups/")
    assert (tmp_path / backup).read_text() == "written by a person\n"


def test_atomic_write_leaves_no_temporary_file_and_keeps_mode(tmp_path):
    target = tmp_path / "x" / "script.py"
    atomic_write(target, "a\n")
    target.chmod(0o755)
    atomic_write(target, "b\n")
    assert target.read_text() == "b\n" and target.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in target.parent.iterdir()] == ["script.py"]


def test_write_if_changed_leaves_identical_files_alone(tmp_path):
    target = tmp_path / "a.py"
    assert write_if_changed(target, "x\n")
    mtime = target.stat().st_mtime_ns
    assert not write_if_changed(target, "x\n")
    assert target.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("text", ["<<<<<<< HEAD\n{}\n", '{"format": 2}', '{"files": []}', "[]"])
def test_a_file_that_is_no_manifest_is_one_clear_error(tmp_path, text):
    (tmp_path / ".flmigrate").mkdir()
    (tmp_path / ".flmigrate/manifest.json").write_text(text)
    with pytest.raises(FlmigrateError, match=r"manifest.json: not a flmigrate manifest .*restore it"):
        Manifest(tmp_path)


@pytest.mark.parametrize("entry", ["vllm_fl/models/b.py", {"sha256": "x"}, []])
def test_an_entry_that_is_no_record_is_one_line_naming_it(tmp_path, entry):
    files = {"vllm_fl/models/a.py": {"sha256": "x", "generated_sha256": "y"}, "vllm_fl/models/b.py": entry}
    (tmp_path / ".flmigrate").mkdir()
    (tmp_path / ".flmigrate/manifest.json").write_text(json.dumps({"format": 2, "files": files}))
    with pytest.raises(FlmigrateError) as caught:
        Manifest(tmp_path)
    assert str(caught.value) == (
        f'{tmp_path}/.flmigrate/manifest.json: entry "vllm_fl/models/b.py" of "files" is not a record '
        "(an object with sha256 and generated_sha256); restore the manifest from the plugin's git history"
    )


def test_each_record_is_saved_as_it_is_written(tmp_path):
    manifest = Manifest(tmp_path)
    with manifest.transaction():
        manifest.write("vllm_fl/models/a.py", "a\n")
        manifest.record("vllm_fl/models/a.py", "a\n", "a\n", {"model": "tiny"})
        assert "vllm_fl/models/a.py" in Manifest(tmp_path).entries  # on disk before the step ends


@pytest.mark.parametrize("failure", [KeyboardInterrupt(), OSError(28, "No space left on device")])
def test_a_failed_transaction_puts_every_file_back(tmp_path, failure):
    manifest = Manifest(tmp_path)
    manifest.write("vllm_fl/models/a.py", "a, as written before\n")
    manifest.record("vllm_fl/models/a.py", "a, as written before\n", "a, as written before\n", {})
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    with pytest.raises(type(failure)):
        with manifest.transaction():
            manifest.write("vllm_fl/models/a.py", "a, new\n")
            manifest.record("vllm_fl/models/a.py", "a, new\n", "a, new\n", {})
            manifest.write("vllm_fl/models/b.py", "b, new\n")
            manifest.record("vllm_fl/models/b.py", "b, new\n", "b, new\n", {})
            manifest.remove("vllm_fl/models/a.py")
            raise failure
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
    assert set(manifest.entries) == {"vllm_fl/models/a.py"}


def test_a_file_that_cannot_be_put_back_is_named(tmp_path, monkeypatch):
    manifest = Manifest(tmp_path)
    manifest.write("a.py", "a, before\n")
    with pytest.raises(FlmigrateError) as caught:
        with manifest.transaction():
            manifest.write("a.py", "a, new\n")
            monkeypatch.setattr("pytest_flmigrate.manifest.atomic_write", refuse_every_write)
            raise FlmigrateError("cannot write b.py: No space left on device")
    assert (
        caught.value.message
        == "cannot write b.py: No space left on device; 1 file(s) of this step could not be put back"
    )
    assert caught.value.detail == f"not put back: {tmp_path / 'a.py'}"


def refuse_every_write(path, text):
    raise FlmigrateError(f"cannot write {path}: Operation not permitted")
