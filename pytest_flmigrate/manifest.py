"""What the tool wrote into the plugin checkout, and writes that never lose a hand edit.

The manifest (``.flmigrate/manifest.json`` in the plugin checkout, meant to be committed with
the plugin) records the sha256 of every file as the tool last wrote it. A target whose
content differs from that record, or that exists without one, was made or edited by hand:
it is only replaced with ``force``, after a backup under ``.flmigrate/backups/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate.errors import FlmigrateError

MANIFEST = Path(".flmigrate/manifest.json")
BACKUPS = Path(".flmigrate/backups")


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


@dataclass(frozen=True)
class WriteOutcome:
    path: str  # relative to the plugin checkout
    status: str  # "created", "updated", "unchanged", "forced"
    sha256: str
    backup: str | None = None


class Manifest:
    def __init__(self, plugin_dir: Path) -> None:
        self.plugin_dir = plugin_dir
        self.path = plugin_dir / MANIFEST
        self.entries: dict[str, dict] = (
            json.loads(self.path.read_text(encoding="utf-8"))["files"] if self.path.exists() else {}
        )

    def hand_edited(self, relative: str, new_text: str) -> bool:
        """True when the file exists with content the tool did not write (and will not write now)."""
        target = self.plugin_dir / relative
        if not target.exists():
            return False
        current = sha256(target.read_bytes())
        if current == sha256(new_text.encode()):
            return False
        recorded = self.entries.get(relative, {}).get("sha256")
        return current != recorded

    def check_writable(self, texts: dict[str, str], force: bool) -> None:
        """Refuse, before anything is written, when a target holds a hand edit."""
        edited = [relative for relative, text in texts.items() if self.hand_edited(relative, text)]
        if edited and not force:
            raise FlmigrateError(
                f"{edited[0]} differs from what flmigrate last wrote (a hand edit); nothing was "
                "written. Keep it, or rerun with --force to overwrite it after a backup",
                "hand-edited: " + ", ".join(edited),
            )

    def write(self, relative: str, text: str, record: dict, force: bool) -> WriteOutcome:
        target = self.plugin_dir / relative
        digest = sha256(text.encode())
        backup = None
        if target.exists():
            if sha256(target.read_bytes()) == digest:
                self.entries[relative] = {**record, "sha256": digest}
                return WriteOutcome(relative, "unchanged", digest)
            if self.hand_edited(relative, text):
                if not force:
                    raise FlmigrateError(f"{relative} holds a hand edit; rerun with --force to overwrite it")
                backup = self._backup(relative)
        status = "forced" if backup else ("updated" if target.exists() else "created")
        atomic_write(target, text)
        self.entries[relative] = {**record, "sha256": digest}
        return WriteOutcome(relative, status, digest, backup)

    def _backup(self, relative: str) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        destination = self.plugin_dir / BACKUPS / stamp / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.plugin_dir / relative, destination)
        return str(destination.relative_to(self.plugin_dir))

    def save(self) -> None:
        payload = {"format": 1, "files": dict(sorted(self.entries.items()))}
        text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
        if not self.path.exists() or self.path.read_text(encoding="utf-8") != text:
            atomic_write(self.path, text)
