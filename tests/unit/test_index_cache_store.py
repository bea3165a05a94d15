"""The cached form of an index (index_store.py): a round trip, laziness, versions, corrupt files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_flmigrate import progress
from pytest_flmigrate.index import build, resolve
from pytest_flmigrate.index import store as index_store
from pytest_flmigrate.index.sources import SourceTree
from tests.fixtures.trees import write
from tests.unit.test_symbols import PKG


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SourceTree:
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path / "cache"))
    return SourceTree(root=write(tmp_path / "tree", PKG), package="pkg", source="test", version="1.0")


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    said: list[str] = []
    monkeypatch.setattr(progress, "_sink", said.append)
    monkeypatch.setattr(progress, "_quiet", False)
    return said


def test_round_trip_gives_the_index_built_in_memory(tree):
    build.build_index(tree)  # writes the cache
    stored = build.build_index(tree)  # opens it
    memory = build.index_directory(tree.root, "pkg", "1.0")
    assert stored.store is not None and memory.store is None
    assert sorted(stored.modules) == sorted(memory.modules)
    assert {name: stored.modules[name] for name in stored.modules} == dict(memory.modules)
    assert stored.digest == memory.digest and stored.paths() == memory.paths()
    for name in ("Base", "LazyThing", "helper", "OnlyTyped", "nothing"):
        assert sorted(stored.definitions(name)) == sorted(memory.definitions(name)), name
    assert stored.member_names() == memory.member_names() and "__init__" in stored.member_names()
    assert stored.classes_with_member("__init__") == memory.classes_with_member("__init__") != []
    on_disk, in_memory = resolve.Resolver([stored]), resolve.Resolver([memory])
    assert on_disk.resolve("pkg", "Lazy") == in_memory.resolve("pkg", "Lazy") is not None
    assert on_disk.locate("LazyThing") == in_memory.locate("LazyThing") != ()


def test_opening_a_store_decodes_no_module_until_asked(tree):
    build.build_index(tree)
    decoded: list[dict] = []
    store = index_store.IndexStore(build.cache_path(tree, build.build_index(tree).digest))
    modules = index_store.StoredModules(store, lambda record: decoded.append(record) or record)
    assert "pkg.core" in modules and len(modules) == 8 and not decoded
    assert modules["pkg.core"] is modules["pkg.core"] and len(decoded) == 1
    with pytest.raises(KeyError):
        modules["pkg.absent"]


def test_a_store_of_another_format_is_rebuilt_never_read(tree, lines, monkeypatch):
    cache = build.cache_path(tree, build.build_index(tree).digest)
    monkeypatch.setattr(index_store, "STORE_FORMAT", index_store.STORE_FORMAT + 1)
    with pytest.raises(index_store.UnreadableStore, match="store format"):
        index_store.IndexStore(cache)
    # a new format is also a new file name: an old cache is never even opened
    monkeypatch.setattr(build, "STORE_FORMAT", index_store.STORE_FORMAT)
    assert build.cache_path(tree, "d") != cache
    monkeypatch.setattr(build, "INDEX_FORMAT", build.INDEX_FORMAT + 1)
    assert build.cache_path(tree, "d").name != cache.name


def test_a_store_written_by_another_format_at_the_same_path_is_rebuilt(tree, lines, monkeypatch):
    cache = build.cache_path(tree, build.build_index(tree).digest)
    cache.unlink()
    with monkeypatch.context() as patched:
        patched.setattr(index_store, "STORE_FORMAT", 0)
        build.build_index(tree)  # a format-0 file under the current name
    lines.clear()
    rebuilt = build.build_index(tree)
    assert rebuilt.store is not None and rebuilt.store.meta["format"] == str(index_store.STORE_FORMAT)
    assert [line for line in lines if "unreadable" in line] == [
        f"index cache {cache.name} is unreadable (store format '0', expected {index_store.STORE_FORMAT}); rebuilding it"
    ]


@pytest.mark.parametrize("damage", [b"not a database at all" * 100, b""], ids=["garbage", "empty"])
def test_a_corrupt_cache_file_is_rebuilt_with_one_line(tree, lines, monkeypatch, damage):
    cache = build.cache_path(tree, build.build_index(tree).digest)
    cache.write_bytes(damage)
    monkeypatch.setattr(progress, "_quiet", True)  # the line shows even under -q
    lines.clear()
    rebuilt = build.build_index(tree)
    assert len(lines) == 1 and lines[0].startswith(f"index cache {cache.name} is unreadable (")
    assert lines[0].endswith("; rebuilding it")
    assert rebuilt.modules["pkg.core"].classes["Base"].methods["__init__"].params[1].name == "a"
    assert index_store.IndexStore(cache).meta["package"] == "pkg"


def test_a_truncated_store_is_rebuilt(tree, lines):
    cache = build.cache_path(tree, build.build_index(tree).digest)
    cache.write_bytes(cache.read_bytes()[:2048])
    lines.clear()
    assert "pkg.core" in build.build_index(tree).modules
    assert sum("unreadable" in line for line in lines) == 1


def test_indexing_over_several_cores_stores_what_one_core_does(tree, tmp_path, lines, monkeypatch):
    serial = build.build_index(tree)
    serial_records = {name: serial.store.record(name) for name in serial.modules}
    monkeypatch.setattr(build, "PARALLEL_FROM_FILES", 1)
    monkeypatch.setattr(build, "_workers", lambda: 2)
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path / "cache-parallel"))
    lines.clear()
    parallel = build.build_index(tree)
    assert {name: parallel.store.record(name) for name in parallel.modules} == serial_records
    assert lines[0] == "indexing pkg 1.0: 8 files on 2 core(s), once per tree"
    assert lines[-1].startswith("indexed pkg 1.0: 8 files in ")
    assert not any("\r" in line for line in lines)


def test_progress_lines_are_quiet_when_asked_but_notices_are_not(lines):
    quiet: list[str] = []
    restore = progress.use(quiet.append, quiet=True)
    progress.report("indexing")
    progress.notice("rebuilt")
    restore()
    progress.report("after the session")
    assert quiet == ["rebuilt"] and lines == ["after the session"]


def test_a_forked_process_reads_through_its_own_connection(tree):
    index = build.build_index(tree)
    parent = index.store._connection()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        ok = index.store._connection() is not parent and index.definitions("LazyThing") == [
            ("pkg.lazy_mod", "class", False)
        ]
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 1) == b"1"
    assert index.store._connection() is parent
