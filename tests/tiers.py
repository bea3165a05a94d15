"""The test tiers: which folder holds which tier, and the pytest arguments that select one.

- fast: tests/unit, tests/patches and tests/e2e, minus `remote`: no envs, no downloads, no sshd;
- integration: tests/integration, marked `integration`: real vLLM source trees from PyPI (cached);
- runtime: tests/runtime, marked `runtime`: real vLLM servers from the provisioned CPU envs;
- remote: marked `remote` per test: a real OpenSSH server on loopback (scripts/ci-services).

The root conftest marks every test under a tier's folder with the tier's marker, so a folder and
its marker cannot disagree; `remote` cuts across folders and is marked on the tests themselves.
``python -m tests.tiers NAME`` prints a tier's pytest arguments, one a line: ``scripts/test NAME``
runs them.

scripts/test runs the tests on two pytest-xdist workers (``--dist loadgroup``), where each worker
builds the fixtures of the tests it gets. A runtime test's module fixtures start vLLM servers and
build tiny models: the tests of a runtime module with such a fixture are one group, run by one
worker, and the tests that share the session's migrated tree (``SHARED_RUNTIME_FIXTURE``) are one
group across modules; every other test goes to whichever worker is free.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The folders whose every test carries the tier's marker (added by the root conftest).
FOLDER_MARKERS = {"tests/integration": "integration", "tests/runtime": "runtime"}
#: The fast tier's folders: no test in them carries a folder marker.
FAST_FOLDERS = ("tests/unit", "tests/patches", "tests/e2e")
#: The markers that take a test out of the fast tier, each a tier of its own.
SLOW_MARKERS = ("integration", "runtime", "remote")
#: The fast tier's selection: every test that no slow tier claims.
FAST = " and ".join(f"not {marker}" for marker in SLOW_MARKERS)
TIERS = {"fast": FAST, **{marker: marker for marker in SLOW_MARKERS}}
#: The runtime tier's session fixture that one full migration builds (tests/runtime/conftest.py).
SHARED_RUNTIME_FIXTURE = "migrated"


def folder_marker(path: Path) -> str | None:
    """The marker of the tier whose folder holds ``path`` (None: a fast folder, or not a test)."""
    if not path.is_relative_to(REPO):
        return None
    folder = "/".join(path.relative_to(REPO).parts[:2])
    return FOLDER_MARKERS.get(folder)


def worker_group(path: Path, fixtures: Iterable[str], module_scoped: bool) -> str | None:
    """The xdist group of a test at ``path`` using ``fixtures`` (``module_scoped``: one of them is
    module-scoped): the shared migrated tree's, its runtime module's, or None (any worker)."""
    if folder_marker(path) != "runtime":
        return None
    if SHARED_RUNTIME_FIXTURE in fixtures:
        return SHARED_RUNTIME_FIXTURE
    return path.relative_to(REPO).as_posix() if module_scoped else None


def arguments(name: str) -> list[str]:
    """The pytest arguments that select tier ``name``."""
    return ["-m", TIERS[name]]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in TIERS:
        print(f"tests.tiers: expected one tier name of {', '.join(TIERS)}", file=sys.stderr)
        return 2
    print("\n".join(arguments(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
