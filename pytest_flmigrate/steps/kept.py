"""Results of runtime steps kept on disk, named by a hash of everything they are a function of.

The pinned env's answers about a plugin checkout (step 4's import smoke, step 5's resolution, the
plugin's own tests of steps 1, 7 and 8) depend on the checkout's files and on the env only. They are
kept under ``<cache>/<kind>/<hash>.json`` (``path``), the hash over the inputs the caller names
(``files``: the content of the plugin package and the other folders and files it names, ``env``:
what the probe found, the request), written atomically after a run that finished; a later run with
the same inputs replays the kept result instead of starting the pinned env's python. A missing or
unreadable file is no result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_flmigrate.index.sources import cache_dir
from pytest_flmigrate.layout import PLUGIN_PACKAGE
from pytest_flmigrate.manifest import atomic_write

FORMAT = 1
#: Files of a plugin checkout beside its package that decide what it installs and how its tests run.
PLUGIN_METADATA = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini", "conftest.py")


def files(plugin_dir: Path, folders: Iterable[str] = ()) -> dict[str, str]:
    """sha256 of every file of the plugin package, of ``folders`` (relative to the checkout) and of
    the checkout's ``PLUGIN_METADATA``, by relative path; bytecode is left out."""
    found: dict[str, str] = {}
    for folder in (PLUGIN_PACKAGE, *folders):
        for path in sorted((plugin_dir / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                found[str(path.relative_to(plugin_dir))] = hashlib.sha256(path.read_bytes()).hexdigest()
    for name in PLUGIN_METADATA:
        if (plugin_dir / name).is_file():
            found[name] = hashlib.sha256((plugin_dir / name).read_bytes()).hexdigest()
    return found


def path(kind: str, inputs: dict[str, Any], cache: Path | None = None) -> Path:
    key = hashlib.sha256(json.dumps({"format": FORMAT, **inputs}, sort_keys=True).encode()).hexdigest()[:32]
    return (cache if cache is not None else cache_dir()) / kind / f"{key}.json"


def load(kept: Path | None) -> dict | None:
    if kept is None:
        return None
    try:
        data = json.loads(kept.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save(kept: Path | None, data: dict) -> None:
    if kept is not None:
        atomic_write(kept, json.dumps(data) + "\n")
