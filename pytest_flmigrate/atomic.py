"""Atomic writes, of a file or of a folder: a reader sees the old content or the new, never half.

Each writes beside the target (same folder, so the same file system) and renames into place: a
file with ``os.replace``; a folder by setting the old one aside, renaming the new one in and then
removing the old. What fails half-way is removed; the target stays as it was.

The standard library only: tiny/qwen2_checkpoint.py loads this file by its path when it runs as a
script in a vLLM env, where this package is not installed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path


def _beside(path: Path, kind: str) -> Path:
    """A name beside ``path`` that no other writer (process or thread) picks."""
    return path.with_name(f".{path.name}.{kind}{os.getpid()}-{secrets.token_hex(4)}")


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """An empty new file beside ``path`` to write (it gets the umask's mode, or the mode of the
    ``path`` it replaces); renamed onto ``path`` when the block ends, removed when it raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _beside(path, "tmp")
    os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield temporary
        if path.exists():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write(path: Path, data: str | bytes) -> None:
    """Write ``data`` (bytes as they are, a string in UTF-8) to ``path`` atomically."""
    with replacing(path) as temporary:
        temporary.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


@contextlib.contextmanager
def folder(target: Path) -> Iterator[Path]:
    """A new empty folder beside ``target`` to fill; put in the place of ``target`` (an older
    ``target`` is removed) when the block ends, removed when it raises."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = _beside(target, "new")
    work.mkdir()
    try:
        yield work
        _swap_in(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _swap_in(work: Path, target: Path) -> None:
    """Rename ``work`` to ``target``, an older ``target`` set aside first and removed after (put
    back when the rename fails)."""
    old = _beside(target, "old")
    if target.exists():
        target.rename(old)
    try:
        work.rename(target)
    except BaseException:
        if old.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
