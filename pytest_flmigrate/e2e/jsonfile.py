"""Reading a JSON file the user names (``--e2e-prompts``, ``--gt-config``): each problem one line."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_flmigrate.errors import FlmigrateError


def read_json(path: Path, where: str, missing: str = "no such file") -> object:
    """The JSON value in ``path``; a missing, unreadable, non-UTF-8 or malformed file raises one
    line starting with ``where`` (``missing``: what to say when there is no such file)."""
    if not path.is_file():
        raise FlmigrateError(f"{where}: {missing}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise FlmigrateError(f"{where}: not UTF-8 text; save it as UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise FlmigrateError(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except OSError as exc:
        raise FlmigrateError(f"{where}: cannot read it ({exc.strerror or exc})") from None
