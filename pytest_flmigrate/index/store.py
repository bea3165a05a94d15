"""The on-disk form of a tree's symbol index: one sqlite file per tree, read lazily.

Loading a whole tree's index as Python objects took seconds and left millions of live objects
(which every later ``gc.collect()`` walks). A stored index is opened instead: module names and
paths are read at once, a module's record is decoded only when asked for, and the questions
asked of every module (where is ``name`` defined, which classes have a member ``name``) are
answered by the tables below without decoding any module.

Tables: ``meta`` (format, package, version, digest), ``modules`` (name, path, record: the
module's JSON), ``definitions`` (name, module, kind, type_checking) and ``members`` (name,
module, class). A file of another format, or one sqlite cannot read, is reported as
:class:`UnreadableStore`; the caller rebuilds it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_flmigrate import atomic

#: The layout of the file; a store of another format is rebuilt, never read.
STORE_FORMAT = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE modules (name TEXT PRIMARY KEY, path TEXT NOT NULL, record TEXT NOT NULL);
CREATE TABLE definitions (name TEXT NOT NULL, module TEXT NOT NULL, kind TEXT NOT NULL, type_checking INTEGER NOT NULL);
CREATE TABLE members (name TEXT NOT NULL, module TEXT NOT NULL, class TEXT NOT NULL);
"""
_INDEXES = """
CREATE INDEX definitions_by_name ON definitions (name);
CREATE INDEX members_by_name ON members (name);
"""


class UnreadableStore(Exception):
    """The file is not a store of this format: corrupt, truncated, or written by another version."""


@dataclass(frozen=True)
class StoredModule:
    """What the tables hold for one module: its record and the rows derived from it."""

    name: str
    path: str
    record: str  # the module's JSON, encoded where it was indexed (a worker process)
    definitions: tuple[tuple[str, str, bool], ...]  # (name, kind, type_checking)
    members: tuple[tuple[str, str], ...]  # (member name, class name)


def write_store(path: Path, meta: dict[str, str], modules: Iterable[StoredModule]) -> None:
    """Write a store to ``path`` atomically (a new file renamed into place)."""
    with atomic.replacing(path) as temporary:
        connection = sqlite3.connect(temporary)
        try:
            _fill(connection, meta, modules)
        finally:
            connection.close()


def _fill(connection: sqlite3.Connection, meta: dict[str, str], modules: Iterable[StoredModule]) -> None:
    connection.executescript(_SCHEMA)
    connection.executemany("INSERT INTO meta VALUES (?, ?)", [("format", str(STORE_FORMAT)), *sorted(meta.items())])
    for module in modules:
        connection.execute(
            "INSERT INTO modules VALUES (?, ?, ?)",
            (module.name, module.path, module.record),
        )
        connection.executemany(
            "INSERT INTO definitions VALUES (?, ?, ?, ?)",
            [(name, module.name, kind, int(checking)) for name, kind, checking in module.definitions],
        )
        connection.executemany(
            "INSERT INTO members VALUES (?, ?, ?)",
            [(name, module.name, owner) for name, owner in module.members],
        )
    connection.executescript(_INDEXES)
    connection.commit()


class IndexStore:
    """An opened store: metadata at hand, module records and queries read on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._opened: tuple[int, sqlite3.Connection] | None = None
        try:
            self.meta = dict(self._connection().execute("SELECT key, value FROM meta"))
            if self.meta.get("format") != str(STORE_FORMAT):
                raise UnreadableStore(f"store format {self.meta.get('format')!r}, expected {STORE_FORMAT}")
            self.paths: dict[str, str] = dict(self._connection().execute("SELECT name, path FROM modules"))
        except sqlite3.Error as exc:
            raise UnreadableStore(str(exc)) from None

    def _connection(self) -> sqlite3.Connection:
        """This process's connection: a forked worker (bench/coverage.py's pool) opens its own,
        as sqlite requires. ``immutable``: the file never changes after its rename into place."""
        if self._opened is None or self._opened[0] != os.getpid():
            uri = f"{self.path.as_uri()}?immutable=1"
            self._opened = (os.getpid(), sqlite3.connect(uri, uri=True, check_same_thread=False))
        return self._opened[1]

    def record(self, module: str) -> dict[str, Any]:
        row = self._query("SELECT record FROM modules WHERE name = ?", (module,))
        if not row:
            raise KeyError(module)
        try:
            return json.loads(row[0][0])
        except ValueError as exc:
            raise UnreadableStore(f"{module}: {exc}") from None

    def definitions(self, name: str) -> list[tuple[str, str, bool]]:
        """(module, kind, type_checking) of every module defining ``name`` at top level."""
        rows = self._query("SELECT module, kind, type_checking FROM definitions WHERE name = ?", (name,))
        return [(module, kind, bool(checking)) for module, kind, checking in rows]

    def classes_with_member(self, name: str) -> list[tuple[str, str]]:
        """(module, class) of every class with a method, attribute or field ``name``."""
        return [tuple(row) for row in self._query("SELECT module, class FROM members WHERE name = ?", (name,))]

    def member_names(self) -> frozenset[str]:
        return frozenset(row[0] for row in self._query("SELECT DISTINCT name FROM members", ()))

    def _query(self, sql: str, parameters: tuple) -> list[tuple]:
        try:
            return self._connection().execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise UnreadableStore(f"{self.path}: {exc}") from None


class StoredModules(Mapping):
    """A store's modules as a mapping: names known at once, each record decoded on first access
    and kept (so a module read twice is one object)."""

    def __init__(self, store: IndexStore, decode: Callable[[dict[str, Any]], Any]) -> None:
        self.store = store
        self._decode = decode
        self._decoded: dict[str, Any] = {}

    def __getitem__(self, module: str):
        if module not in self._decoded:
            if module not in self.store.paths:
                raise KeyError(module)
            self._decoded[module] = self._decode(self.store.record(module))
        return self._decoded[module]

    def __contains__(self, module: object) -> bool:
        return module in self.store.paths

    def __iter__(self) -> Iterator[str]:
        return iter(self.store.paths)

    def __len__(self) -> int:
        return len(self.store.paths)
