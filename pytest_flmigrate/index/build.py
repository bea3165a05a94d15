"""Building a tree's index: every module of its package indexed (:mod:`pytest_flmigrate.index.symbols`
extracts one), over the machine's cores for a large tree, and cached on disk keyed by the tree's
package, version, the formats and a hash of its sources: one sqlite file per tree, opened rather
than loaded (:mod:`pytest_flmigrate.index.store`). Small trees (a plugin checkout, fixtures) are
indexed in memory by :func:`index_directory`.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from filelock import FileLock

from pytest_flmigrate import progress
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index import sources
from pytest_flmigrate.index.records import INDEX_FORMAT, ModuleInfo, TreeIndex, class_member_names
from pytest_flmigrate.index.sources import SourceTree
from pytest_flmigrate.index.store import (
    STORE_FORMAT,
    IndexStore,
    StoredModule,
    StoredModules,
    UnreadableStore,
    write_store,
)
from pytest_flmigrate.index.symbols import module_info, module_name, parse_module


def _python_files(package_dir: Path) -> list[Path]:
    """Every ``.py`` file under ``package_dir``, sorted (``os.walk``: rglob and sorting Paths cost
    a second on a 5000-file tree)."""
    found = [
        os.path.join(folder, name)
        for folder, _, names in os.walk(package_dir)
        for name in names
        if name.endswith(".py")
    ]
    return [Path(path) for path in sorted(found)]


def _sources_digest(files: list[Path]) -> str:
    """A hash of the files' paths, sizes and modification times: a changed file is a new index
    without reading every file of the tree on every run."""
    digest = hashlib.sha256()
    for file in files:
        status = file.stat()
        digest.update(f"{file}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _index_file(root: Path, file: Path) -> tuple[str, ModuleInfo]:
    relative = file.relative_to(root)
    name, is_package = module_name(relative)
    parsed = parse_module(file)
    if parsed is None:
        return name, ModuleInfo(path=str(relative), is_package=is_package, parse_error="syntax error")
    return name, module_info(relative, parsed, is_package, name)


def index_files(root: Path, files: list[Path]) -> dict[str, ModuleInfo]:
    return dict(_index_file(root, file) for file in files)


def index_directory(root: Path, package: str, version: str = "local") -> TreeIndex:
    """Index ``root/package`` without the disk cache (small trees: a plugin checkout, fixtures)."""
    files = _python_files(root / package)
    return TreeIndex(
        root=root, package=package, version=version, modules=index_files(root, files), digest=_sources_digest(files)
    )


def stored_module(name: str, info: ModuleInfo) -> StoredModule:
    """One module as the cache stores it: its record, plus the rows the store's queries read."""
    definitions = tuple(
        (defined, kind, defined in info.type_checking) for defined, kind in info.defines.items() if kind != "annotation"
    )
    members = tuple((member, cls.name) for cls in info.classes.values() for member in sorted(class_member_names(cls)))
    return StoredModule(name, info.path, json.dumps(asdict(info), separators=(",", ":")), definitions, members)


def _index_chunk(root: Path, files: list[Path]) -> list[StoredModule]:
    """A worker's share of a tree: its files indexed and encoded (cheap to send back)."""
    return [stored_module(*_index_file(root, file)) for file in files]


#: Trees with fewer files are indexed in-process (a worker's start costs more than it saves).
PARALLEL_FROM_FILES = 400


def _workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 4))


def _index_tree(tree: SourceTree, files: list[Path]) -> Iterator[StoredModule]:
    """Every module of ``tree`` indexed, over the machine's cores for a large tree, with a
    progress line per quarter."""
    label = f"{tree.package} {tree.version}"
    workers = _workers() if len(files) >= PARALLEL_FROM_FILES else 1
    progress.report(f"indexing {label}: {len(files)} files on {workers} core(s), once per tree")
    started = time.monotonic()
    chunk_count = workers * 8 if workers > 1 else 4  # several chunks: progress between them
    chunks = [files[start::chunk_count] for start in range(chunk_count)]
    done, next_report = 0, len(files) // 4
    if workers == 1:
        results: Iterator[list[StoredModule]] = (_index_chunk(tree.root, chunk) for chunk in chunks)
    else:
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(_index_chunk, [tree.root] * len(chunks), chunks)
    try:
        for result in results:
            yield from result
            done += len(result)
            if next_report and done >= next_report and done < len(files):
                progress.report(f"indexing {label}: {done}/{len(files)} files")
                next_report += len(files) // 4
    finally:
        if workers > 1:
            pool.shutdown(cancel_futures=True)
    progress.report(f"indexed {label}: {len(files)} files in {time.monotonic() - started:.0f} s")


def cache_path(tree: SourceTree, digest: str) -> Path:
    """``<cache>/index/<package>-<version>-f<index format>.<store format>-<digest>.sqlite``: a
    cache written by another format is another file, never read."""
    name = f"{tree.package}-{tree.version}-f{INDEX_FORMAT}.{STORE_FORMAT}-{digest}.sqlite"
    return sources.cache_dir() / "index" / name


def build_index(tree: SourceTree) -> TreeIndex:
    """Index every module of ``tree``'s package, from the disk cache when unchanged.

    The cache is opened, not loaded: modules are decoded when first used. A cache file that
    cannot be read (corrupt, truncated) is rebuilt, saying so in one line.
    """
    files = _python_files(tree.package_dir)
    digest = _sources_digest(files)
    cache = cache_path(tree, digest)
    opened = _open(cache, tree, digest)
    if opened is not None:
        return opened
    cache.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache) + ".lock"):
        opened = _open(cache, tree, digest)
        if opened is not None:
            return opened
        meta = {"package": tree.package, "version": tree.version, "digest": digest}
        write_store(cache, meta, _index_tree(tree, files))
    opened = _open(cache, tree, digest)
    if opened is None:  # pragma: no cover - a store just written is readable
        raise FlmigrateError(f"{cache}: the index just written cannot be read; check the disk")
    return opened


def _open(cache: Path, tree: SourceTree, digest: str) -> TreeIndex | None:
    """The index stored at ``cache``; None when absent or unreadable (then it is removed)."""
    if not cache.exists():
        return None
    try:
        store = IndexStore(cache)
    except UnreadableStore as exc:
        progress.notice(f"index cache {cache.name} is unreadable ({exc}); rebuilding it")
        cache.unlink(missing_ok=True)
        return None
    modules = StoredModules(store, ModuleInfo.from_dict)
    return TreeIndex(
        root=tree.root, package=tree.package, version=tree.version, modules=modules, digest=digest, store=store
    )
