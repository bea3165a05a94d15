"""Step 4's import smoke and step 5's resolution kept and replayed (steps/import_smoke.py), with a
stand-in for the pinned env's python that reports as the smoke script does and counts its runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.steps import import_smoke

FAKE = """#!{python}
import json, sys
from pathlib import Path
calls = Path({calls!r})
calls.write_text(str(int(calls.read_text()) + 1) if calls.exists() else "1")
request = json.loads(sys.argv[3])
if request["modules"] == ["silent"]:
    sys.exit(3)
ok = request["modules"] != ["vllm_fl.models.broken"]
error = {{}} if ok else {{"error": "ImportError: cannot import name 'X'", "traceback": "Traceback\\\\nImportError: x"}}
print("loading")
print("FLMIGRATE-SMOKE " + json.dumps({{"imports": {{m: {{"ok": ok, **error}} for m in request["modules"]}}, "architectures": {{}}, "platform": None}}))
"""
ENV = {"vllm": "/envs/p/site-packages/vllm", "vllm_version": "0.13.0", "python": "3.11.7"}


@pytest.fixture
def fake(tmp_path: Path) -> tuple[str, Path]:
    calls = tmp_path / "calls"
    script = tmp_path / "python"
    script.write_text(FAKE.format(python=sys.executable, calls=str(calls)))
    script.chmod(0o755)
    return str(script), calls


def plugin(root: Path, text: str = "X = 1\n") -> Path:
    (root / "vllm_fl" / "models").mkdir(parents=True, exist_ok=True)
    (root / "vllm_fl" / "models" / "m.py").write_text(text)
    (root / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    return root


def test_a_finished_smoke_is_kept_and_replayed_with_its_log(fake, tmp_path):
    python, calls = fake
    tree = plugin(tmp_path / "plugin")
    modules = ["vllm_fl.models.m"]
    memo = import_smoke.memo_path(tree, ENV, "import-smoke", {"modules": modules}, cache=tmp_path / "cache")
    first = import_smoke.import_modules(python, modules, tmp_path / "logs" / "a.log", memo)
    assert calls.read_text() == "1" and not first.replayed and memo.exists()
    again = import_smoke.import_modules(python, modules, tmp_path / "logs" / "b.log", memo)
    assert calls.read_text() == "1" and again.replayed and again.imports == first.imports
    assert (tmp_path / "logs" / "b.log").read_text() == (tmp_path / "logs" / "a.log").read_text()
    assert again.as_dict()["replayed"] is True and "replayed" not in first.as_dict()


def test_the_memo_follows_the_plugin_files_the_env_and_the_request(tmp_path):
    tree = plugin(tmp_path / "plugin")
    base = import_smoke.memo_path(tree, ENV, "import-smoke", {"modules": ["a"]})
    (tree / "vllm_fl" / "__pycache__").mkdir()
    (tree / "vllm_fl" / "__pycache__" / "m.pyc").write_bytes(b"\0")
    assert import_smoke.memo_path(tree, ENV, "import-smoke", {"modules": ["a"]}) == base  # bytecode is no input
    assert import_smoke.memo_path(tree, {**ENV, "vllm_version": "0.24.0"}, "import-smoke", {"modules": ["a"]}) != base
    assert import_smoke.memo_path(tree, ENV, "import-smoke", {"modules": ["b"]}) != base
    assert import_smoke.memo_path(tree, ENV, "resolve-smoke", {"modules": ["a"]}) != base
    plugin(tree, "X = 2\n")
    edited = import_smoke.memo_path(tree, ENV, "import-smoke", {"modules": ["a"]})
    assert edited != base
    (tree / "pyproject.toml").write_text("[project]\nname = 'q'\n")  # entry points live there
    assert import_smoke.memo_path(tree, ENV, "import-smoke", {"modules": ["a"]}) not in (base, edited)


def test_a_kept_failure_fails_the_same_way(fake, tmp_path):
    python, calls = fake
    tree = plugin(tmp_path / "plugin")
    modules = ["vllm_fl.models.broken"]
    memo = import_smoke.memo_path(tree, ENV, "import-smoke", {"modules": modules}, cache=tmp_path / "cache")
    errors = []
    for log in ("a.log", "b.log"):
        with pytest.raises(FlmigrateError) as raised:
            import_smoke.import_modules(python, modules, tmp_path / log, memo)
        errors.append(raised.value.message)
    assert calls.read_text() == "1"
    assert (
        errors == ["vllm_fl.models.broken fails to import in the pinned env: ImportError: cannot import name 'X'"] * 2
    )


def test_a_run_that_never_reported_is_not_kept(fake, tmp_path):
    python, calls = fake
    memo = tmp_path / "cache" / "smoke" / "k.json"
    for _ in range(2):
        with pytest.raises(FlmigrateError, match="exited 3 before reporting"):
            import_smoke.import_modules(python, ["silent"], tmp_path / "s.log", memo)
    assert calls.read_text() == "2" and not memo.exists()
    memo.parent.mkdir(parents=True)
    memo.write_text("{broken")  # an unreadable memo is no memo
    with pytest.raises(FlmigrateError):
        import_smoke.import_modules(python, ["silent"], tmp_path / "s.log", memo)
    assert calls.read_text() == "3"
