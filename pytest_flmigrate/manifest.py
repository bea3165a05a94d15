"""What the tool wrote into the plugin checkout: records, pristine bases, atomic writes, backups.

``.flmigrate/manifest.json`` records, for every file the tool wrote, the sha256 of what it
wrote and of what it generated (they differ when a hand edit was replayed);
``.flmigrate/base/<path>`` keeps the generated text, the base of the next three-way merge.
Both are meant to be committed with the plugin; ``.flmigrate/backups/`` is not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from pytest_flmigrate.errors import FlmigrateError

STATE = Path(".flmigrate")
MANIFEST = STATE / "manifest.json"
BASES = STATE / "base"
BACKUPS = STATE / "backups"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if path.exists():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, text: str) -> bool:
    """Atomically write ``text`` unless the file already holds it; True when written."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write(path, text)
    return True


class Manifest:
    def __init__(self, plugin_dir: Path) -> None:
        self.plugin_dir = plugin_dir
        self.path = plugin_dir / MANIFEST
        self.entries: dict[str, dict] = _read_entries(self.path) if self.path.exists() else {}

    def base(self, relative: str) -> str | None:
        """The text the tool last generated for ``relative``, if it ever wrote it."""
        path = self.plugin_dir / BASES / relative
        if relative not in self.entries or not path.exists():
            return None
        return path.read_text(encoding="utf-8")

    def record(self, relative: str, written: str, generated: str, details: dict) -> None:
        write_if_changed(self.plugin_dir / BASES / relative, generated)
        self.entries[relative] = {
            **details,
            "sha256": sha256(written.encode()),
            "generated_sha256": sha256(generated.encode()),
        }

    def backup(self, relative: str) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        destination = self.plugin_dir / BACKUPS / stamp / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.plugin_dir / relative, destination)
        return str(destination.relative_to(self.plugin_dir))

    def save(self) -> None:
        payload = {"format": 2, "files": dict(sorted(self.entries.items()))}
        write_if_changed(self.path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _read_entries(path: Path) -> dict[str, dict]:
    """The ``files`` of a manifest; a file that is not one (say, left mid-merge) is one clear error."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        entries = None
    if not isinstance(entries, dict):
        raise FlmigrateError(
            f"{path}: not a flmigrate manifest (JSON with a \"files\" object); restore it from the "
            "plugin's git history, or delete it and rerun with --force to overwrite what it recorded"
        )
    return entries
