"""The test tiers: which folder holds which tier, and the pytest arguments that select one.

- fast: tests/unit, tests/patches and tests/e2e, minus `remote`: no envs, no downloads, no sshd;
- integration: tests/integration, marked `integration`: real vLLM source trees from PyPI (cached);
- runtime: tests/runtime, marked `runtime`: real vLLM servers from the provisioned CPU envs;
- remote: marked `remote` per test: a real OpenSSH server on loopback (scripts/ci-services).

The root conftest marks every test under a tier's folder with the tier's marker, so a folder and
its marker cannot disagree; `remote` cuts across folders and is marked on the tests themselves.
``python -m tests.tiers NAME`` prints a tier's pytest arguments, one a line: ``scripts/test NAME``
runs them.

scripts/test runs the tests on two pytest-xdist workers, scheduled by ``TierScheduling``: each
worker builds the fixtures of the tests it gets, and a runtime module's tests share servers, tiny
models and their caches, so each runtime module is one unit of work, run by one worker, and the
modules that share something more (``SHARED_UNITS``: the session's migrated tree, a tiny model and
its control's cache) are one unit together; every other test goes to whichever worker is free. (xdist's ``loadgroup`` renames node ids, which
pytest 9 ignores: its groups would not hold.)
"""

from __future__ import annotations

import sys
from pathlib import Path

from xdist.scheduler import LoadScopeScheduling

REPO = Path(__file__).resolve().parent.parent
#: The folders whose every test carries the tier's marker (added by the root conftest).
RUNTIME_FOLDER = "tests/runtime"
FOLDER_MARKERS = {"tests/integration": "integration", RUNTIME_FOLDER: "runtime"}
#: The fast tier's folders: no test in them carries a folder marker.
FAST_FOLDERS = ("tests/unit", "tests/patches", "tests/e2e")
#: The markers that take a test out of the fast tier, each a tier of its own.
SLOW_MARKERS = ("integration", "runtime", "remote")
#: The fast tier's selection: every test that no slow tier claims.
FAST = " and ".join(f"not {marker}" for marker in SLOW_MARKERS)
TIERS = {"fast": FAST, **{marker: marker for marker in SLOW_MARKERS}}
#: Units of work of several runtime modules: what they share -> the modules.
SHARED_UNITS = {
    # tests/runtime/conftest.py's ``migrated``: one full migration, steps 1-11
    "the migrated tree": ("tests/runtime/test_e2e_migrated.py", "tests/runtime/test_runtime_steps.py"),
    # the tiny ``mistral`` and its control: test_tiny.py starts the control afresh and expects it
    # to run, which the other module's run of the same control would make a replay
    "the tiny mistral": ("tests/runtime/test_pin_0_24.py", "tests/runtime/test_tiny.py"),
}


def folder_marker(path: Path) -> str | None:
    """The marker of the tier whose folder holds ``path`` (None: a fast folder, or not a test)."""
    if not path.is_relative_to(REPO):
        return None
    folder = "/".join(path.relative_to(REPO).parts[:2])
    return FOLDER_MARKERS.get(folder)


def scope(nodeid: str) -> str:
    """The unit of work of the test ``nodeid``: a shared unit, its runtime module, or itself."""
    module = nodeid.split("::")[0]
    shared = next((unit for unit, modules in SHARED_UNITS.items() if module in modules), None)
    if shared is not None:
        return shared
    return module if module.startswith(f"{RUNTIME_FOLDER}/") else nodeid


class TierScheduling(LoadScopeScheduling):
    """xdist's load-scope scheduling over ``scope``'s units."""

    def _split_scope(self, nodeid: str) -> str:
        return scope(nodeid)


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
