"""What the tool wrote into the plugin checkout: records, pristine bases, atomic writes, backups.

``.flmigrate/manifest.json`` records, for every file the tool wrote, the sha256 of what it
wrote and of what it generated (they differ when a hand edit was replayed);
``.flmigrate/base/<path>`` keeps the generated text, the base of the next three-way merge.
Both are meant to be committed with the plugin; ``.flmigrate/backups/`` is not.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import shutil
import time
from pathlib import Path

from pytest_flmigrate import atomic
from pytest_flmigrate.errors import FlmigrateError

STATE = Path(".flmigrate")
MANIFEST = STATE / "manifest.json"
BASES = STATE / "base"
BACKUPS = STATE / "backups"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, text: str | bytes) -> None:
    """:func:`atomic.write` (bytes as they are, a string in UTF-8), any OS error one
    :class:`FlmigrateError` naming ``path`` (never the temporary file)."""
    try:
        atomic.write(path, text)
    except OSError as exc:
        raise unwritable(path, exc) from None


def unwritable(path: Path, error: OSError) -> FlmigrateError:
    """The one line for a file that cannot be written, removed or copied."""
    return FlmigrateError(
        f"cannot write {path}: {error.strerror or error}; make it and its folder writable "
        "(lsattr shows an immutable file as 'i'; chattr -i clears it)"
    )


def write_if_changed(path: Path, text: str) -> bool:
    """Atomically write ``text`` unless the file already holds it; True when written."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write(path, text)
    return True


class Manifest:
    """The records of one plugin checkout, and the one writer of the files they describe.

    Inside :meth:`transaction`, every write through the manifest is undone if the block fails,
    and each file is recorded (``manifest.json`` saved) as soon as it is written: no interrupt
    or write error leaves a file the tool wrote without its record.
    """

    def __init__(self, plugin_dir: Path) -> None:
        self.plugin_dir = plugin_dir
        self.path = plugin_dir / MANIFEST
        self.entries: dict[str, dict] = _read_entries(self.path) if self.path.exists() else {}
        self._backup_folder: Path | None = None
        self._undo: dict[Path, bytes | None] | None = None  # in a transaction: what each path held

    def base(self, relative: str) -> str | None:
        """The text the tool last generated for ``relative``, if it ever wrote it."""
        path = self.plugin_dir / BASES / relative
        if relative not in self.entries or not path.exists():
            return None
        return path.read_text(encoding="utf-8")

    @contextlib.contextmanager
    def transaction(self):
        """All or nothing: if the block raises (a write error, Ctrl-C), every file written
        through this manifest, every base and ``manifest.json`` get back what they held."""
        self._undo, entries = {}, copy.deepcopy(self.entries)
        try:
            yield self
        except BaseException as exc:
            not_restored = self._roll_back()
            self.entries = entries
            if isinstance(exc, FlmigrateError):
                if not not_restored:
                    raise FlmigrateError(f"{exc.message}; nothing of this step was kept", exc.detail) from None
                raise FlmigrateError(
                    f"{exc.message}; {len(not_restored)} file(s) of this step could not be put back",
                    "\n".join([*(f"not put back: {path}" for path in not_restored), exc.detail]),
                ) from None
            raise
        finally:
            self._undo = None

    def write(self, relative: str | Path, text: str) -> bool:
        """Write a file of the plugin checkout (atomically, when it changes); True when written."""
        path = self.plugin_dir / relative
        self._remember(path)
        return write_if_changed(path, text)

    def remove(self, relative: str | Path) -> None:
        path = self.plugin_dir / relative
        if path.exists():
            self._remember(path)
            try:
                path.unlink()
            except OSError as exc:
                raise unwritable(path, exc) from None

    def record(self, relative: str, written: str, generated: str, details: dict) -> None:
        """Record ``relative`` as written (its base and ``manifest.json`` are saved now)."""
        self.write(BASES / relative, generated)
        self.entries[relative] = {
            **details,
            "sha256": sha256(written.encode()),
            "generated_sha256": sha256(generated.encode()),
        }
        self.save()

    def forget(self, relative: str) -> None:
        """Remove ``relative``, its base and its record (``manifest.json`` saved now)."""
        self.remove(relative)
        self.remove(BASES / relative)
        self.entries.pop(relative, None)
        self.save()

    def backup(self, relative: str) -> str:
        """Copy a file of the checkout under this run's ``.flmigrate/backups/<time>/``."""
        destination = self._backups() / relative
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.plugin_dir / relative, destination)
        except OSError as exc:
            raise unwritable(destination, exc) from None
        return str(destination.relative_to(self.plugin_dir))

    def save(self) -> None:
        payload = {"format": 2, "files": dict(sorted(self.entries.items()))}
        self._remember(self.path)
        write_if_changed(self.path, json.dumps(payload, indent=2, sort_keys=True) + "\n")

    def _backups(self) -> Path:
        """One folder per manifest (one step 4), never one an earlier run in the same second used."""
        if self._backup_folder is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            folder, suffix = self.plugin_dir / BACKUPS / stamp, 1
            while folder.exists():
                folder, suffix = self.plugin_dir / BACKUPS / f"{stamp}-{suffix}", suffix + 1
            self._backup_folder = folder
        return self._backup_folder

    def _remember(self, path: Path) -> None:
        if self._undo is not None and path not in self._undo:
            self._undo[path] = path.read_bytes() if path.exists() else None

    def _roll_back(self) -> list[Path]:
        """Put back what the transaction changed, newest first; the paths that could not be."""
        failed = []
        for path, before in reversed(list((self._undo or {}).items())):
            try:
                if before is None:
                    path.unlink(missing_ok=True)
                elif not path.exists() or path.read_bytes() != before:
                    atomic_write(path, before)
            except (OSError, FlmigrateError):
                failed.append(path)
        return failed


def _read_entries(path: Path) -> dict[str, dict]:
    """The ``files`` of a manifest; a file that is not one (say, left mid-merge) is one clear error."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        entries = None
    if not isinstance(entries, dict):
        raise FlmigrateError(
            f'{path}: not a flmigrate manifest (JSON with a "files" object); restore it from the '
            "plugin's git history, or delete it and rerun with --force to overwrite what it recorded"
        )
    for relative, entry in entries.items():
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(key), str) for key in ("sha256", "generated_sha256")
        ):
            raise FlmigrateError(
                f'{path}: entry "{relative}" of "files" is not a record (an object with sha256 '
                "and generated_sha256); restore the manifest from the plugin's git history"
            )
    return entries
