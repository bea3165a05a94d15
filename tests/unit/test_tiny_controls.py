"""--tiny's control cache (tiny/controls.py): what its key is made of, the outcomes it keeps and
the ones it never keeps, and the runtime replaying a kept outcome without starting a server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_flmigrate import envs
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.runtime_run import RuntimeRun
from pytest_flmigrate.tiny import controls
from pytest_flmigrate.tiny.checkpoints import TinyModel
from pytest_flmigrate.tiny.control_env import Aligned
from pytest_flmigrate.tiny.synthesize import STAMP

MARKER = {"name": "vllm-0.32.0-cpu", "vllm": "0.32.0+cpu", "torch": "2.13.0", "recipe": 2, "python": "3.11.7"}


def tiny_model(root: Path, files: dict[str, str]) -> TinyModel:
    root.mkdir(parents=True, exist_ok=True)
    (root / STAMP).write_text(json.dumps({"arch": "XForCausalLM", "files": files}))
    return TinyModel(root, "XForCausalLM", True, "", 7)


def provisioned_python(root: Path, marker: dict) -> str:
    (root / "bin").mkdir(parents=True)
    (root / envs.MARKER).write_text(json.dumps({**marker, "built_at": "now", "size_bytes": 1}))
    return str(root / "bin" / "python")


def test_the_key_changes_with_the_checkpoint_the_env_and_the_serve_arguments(tmp_path):
    python = provisioned_python(tmp_path / "env", MARKER)
    tiny = tiny_model(tmp_path / "tiny", {"model.safetensors": "aa"})
    identity = controls.env_identity(python)
    assert identity == {"env": "vllm-0.32.0-cpu", **{f: MARKER.get(f) for f in controls.ENV_FIELDS}}
    base = controls.key(tiny, identity, ["--dtype", "float32"])
    assert base == controls.key(tiny, dict(identity), ("--dtype", "float32"))  # a function of its inputs
    other_weights = tiny_model(tmp_path / "tiny2", {"model.safetensors": "bb"})
    assert controls.key(other_weights, identity, ["--dtype", "float32"]) != base
    assert controls.key(tiny, {**identity, "torch": "2.13.0+cpu"}, ["--dtype", "float32"]) != base
    assert controls.key(tiny, identity, ["--dtype", "float32", "--enforce-eager"]) != base
    assert controls.key(tiny, identity, ["--dtype", "float32"], {}) == base  # no variables: the same key
    assert controls.key(tiny, identity, ["--dtype", "float32"], {"VLLM_MLA_DISABLE": "1"}) != base


def test_a_rebuilt_env_of_the_same_recipe_keeps_the_key(tmp_path):
    first = controls.env_identity(provisioned_python(tmp_path / "a", MARKER))
    rebuilt = controls.env_identity(provisioned_python(tmp_path / "b", {**MARKER, "build_seconds": 99}))
    assert first == rebuilt


def test_an_env_without_a_marker_is_known_by_its_path_and_versions(tmp_path):
    identity = controls.env_identity(sys.executable)
    assert identity["python_path"] == str(Path(sys.executable).absolute())
    assert set(identity) == {"python_path", "vllm", "torch", "transformers", "python"}
    with pytest.raises(FlmigrateError, match=r"^--gt-python /nonexistent/python: cannot read its vLLM version"):
        controls.env_identity("/nonexistent/python")


def test_an_outcome_round_trips_and_an_unreadable_one_is_none(tmp_path):
    kept = controls.ControlCache(tmp_path / "k", "XForCausalLM")
    assert kept.outcome() is None
    kept.save_outcome(False, "upstream vLLM 0.32.0 cannot run XForCausalLM on CPU: TypeError: x")
    assert kept.outcome() == {
        "served": False,
        "reason": "upstream vLLM 0.32.0 cannot run XForCausalLM on CPU: TypeError: x",
    }
    (tmp_path / "k" / controls.OUTCOME).write_text("{not json")
    assert kept.outcome() is None
    (tmp_path / "k" / controls.OUTCOME).write_text(json.dumps({"served": "yes"}))
    assert kept.outcome() is None
    assert [p.name for p in (tmp_path / "k").iterdir()] == [controls.OUTCOME]  # no temporary left


def test_a_missing_stamp_is_one_line(tmp_path):
    with pytest.raises(FlmigrateError, match=r"^--tiny: .* has no readable flmigrate-tiny.json"):
        controls.checkpoint_hash(TinyModel(tmp_path, "X", True, "", None))


@pytest.mark.parametrize(
    ("code", "kept"),
    [("import sys; sys.exit(1)", True), ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", False)],
)
def test_only_a_server_that_exited_with_an_error_is_an_outcome(code, kept):
    process = subprocess.Popen([sys.executable, "-c", code])
    process.wait()
    assert controls.exited_with_error(SimpleNamespace(process=process)) is kept
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not controls.exited_with_error(SimpleNamespace(process=running))  # not healthy in time
    finally:
        running.kill()
        running.wait()
    assert not controls.exited_with_error(None) and not controls.exited_with_error(SimpleNamespace(process=None))


def runtime_with(kept: controls.ControlCache, aligned: Aligned = Aligned({}, ())) -> RuntimeRun:
    runtime = RuntimeRun(SimpleNamespace())
    runtime.say = lambda message: None
    runtime.control_cache = lambda: kept  # type: ignore[method-assign]
    runtime.control_alignment = lambda: aligned  # type: ignore[method-assign]
    runtime.control_unavailable = lambda exc: f"upstream vLLM 0.32.0 cannot run X on CPU: {exc.message}"  # type: ignore[method-assign]
    return runtime


def never_started():
    raise AssertionError("a replayed outcome starts no server")


def test_a_kept_outcome_is_replayed_and_starts_no_server(tmp_path):
    kept = controls.ControlCache(tmp_path / "k", "X")
    kept.save_outcome(True, "")
    runtime = runtime_with(kept)
    runtime.check_control(SimpleNamespace(start=never_started))
    assert runtime.control_outcome == {"served": True, "reason": "", "replayed": True}
    assert runtime.start_control(SimpleNamespace(start=lambda: "server")) == "server"  # a prompt not kept
    assert runtime.control_outcome == {"served": True, "reason": ""}

    kept.save_outcome(False, "upstream vLLM 0.32.0 cannot run X on CPU: TypeError: y")
    runtime = runtime_with(kept)
    with pytest.raises(FlmigrateError, match="^upstream vLLM 0.32.0 cannot run X on CPU: TypeError: y$"):
        runtime.check_control(SimpleNamespace(start=never_started))
    assert runtime.control_outcome == {
        "served": False,
        "reason": "upstream vLLM 0.32.0 cannot run X on CPU: TypeError: y",
        "replayed": True,
    }


def test_a_control_on_the_pins_code_path_says_so_served_or_replayed(tmp_path):
    aligned = Aligned({"VLLM_MLA_DISABLE": "1"}, ("vLLM 0.13.0 serves model type x without MLA",))
    fields = {"env": {"VLLM_MLA_DISABLE": "1"}, "aligned": ["vLLM 0.13.0 serves model type x without MLA"]}
    kept = controls.ControlCache(tmp_path / "k", "X")
    runtime = runtime_with(kept, aligned)
    runtime.check_control(SimpleNamespace(start=lambda: "server"))
    assert runtime.control_outcome == {"served": True, "reason": "", **fields}
    runtime = runtime_with(kept, aligned)
    runtime.check_control(SimpleNamespace(start=never_started))
    assert runtime.control_outcome == {"served": True, "reason": "", **fields, "replayed": True}


def test_a_first_run_keeps_a_served_or_exited_control_but_not_one_that_timed_out(tmp_path):
    served = controls.ControlCache(tmp_path / "served", "X")
    runtime_with(served).check_control(SimpleNamespace(start=lambda: "server"))
    assert served.outcome() == {"served": True, "reason": ""}

    def exits():
        raise FlmigrateError("GT server exited before /health answered")

    exited = controls.ControlCache(tmp_path / "exited", "X")
    failed = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(1)"])
    failed.wait()
    with pytest.raises(FlmigrateError):
        runtime_with(exited).check_control(SimpleNamespace(start=exits, local=SimpleNamespace(process=failed)))
    assert exited.outcome() == {
        "served": False,
        "reason": "upstream vLLM 0.32.0 cannot run X on CPU: GT server exited before /health answered",
    }

    timed_out = controls.ControlCache(tmp_path / "timed-out", "X")
    with pytest.raises(FlmigrateError):
        runtime_with(timed_out).check_control(SimpleNamespace(start=exits, local=SimpleNamespace(process=None)))
    assert timed_out.outcome() is None and not timed_out.root.exists()
