"""Steps 1-11 with real vLLM on CPU: the pinned 0.13.0 env serves the migrated model, the upstream
0.32.0 env serves the ground truth (fixtures in conftest.py, runs in suite_run.py).

Each run is ``python -m pytest --model mimo`` in a subprocess, exactly as a user types it. Skips,
naming the command, when the envs are not provisioned (scripts/provision-cpu-envs).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_flmigrate.servers.ports import free_port
from pytest_flmigrate.steps import serve
from tests.runtime.suite_run import (
    ARCH,
    EXAMPLE_PLUGIN,
    MODEL,
    flmigrate,
    junit_failure,
    plugin_tree,
    processes_mentioning,
)

# --- the whole runtime half, on one tree ----------------------------------------------------------


EVERY_STEP = tuple(str(step) for step in range(1, 12))


def test_every_step_passes_for_a_migrated_model(migrated, checkpoint, upstream_python):
    tree, python, port, run = migrated
    assert run.outcomes(*EVERY_STEP) == dict.fromkeys(EVERY_STEP, "passed"), run.output[-6000:]
    summary = run.summary
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
    # step 11: each built-in text prompt compared with the GT server of the upstream env
    e2e = summary["e2e"]
    assert e2e["gt"]["source"] == f"--gt-python {upstream_python}" and e2e["local"]["url"] == served["url"]
    assert e2e["compared"] == 5 and e2e["matched"] + e2e["near_ties"] == 5 and e2e["diverged"] == 0
    text = {prompt: entry for prompt, entry in e2e["prompts"].items() if entry["kind"] == "text"}
    assert sorted(text) == ["t1", "t2", "t3", "t4", "t5"]
    for entry in text.values():
        assert entry["passed"] is True and entry["gt"] == "collected" and entry["local"] == "collected"
        # all 32 tokens, or fewer when both servers stopped at the same end of sequence
        assert 0 < entry["tokens_compared"] <= 32 and entry["basis"] == "token ids"
    # --e2e-mode all: mimo is text-only, so each multimodal prompt is skipped saying so
    others = {prompt: entry for prompt, entry in e2e["prompts"].items() if prompt not in text}
    assert sorted(others) == ["m1", "m2", "m3", "m4", "m5"]
    assert {entry["verdict"] for entry in others.values()} == {"skipped"}
    assert others["m1"]["reason"] == "mimo is a text-only model: multimodal prompt m1 skipped"
    assert "- E2E (text): ✅" in report
    assert (tree / "reports" / MODEL / "logs" / "gt-server.log").read_text().strip()
    # nothing left running (the GT server stopped at session end), no state file for the port
    assert not processes_mentioning(str(checkpoint))
    assert not (serve.state_dir() / f"port-{port}.json").exists()


def test_keep_servers_rerun_reuses_the_server_and_stop_servers_ends_it(migrated, checkpoint):
    tree, python, port, _ = migrated
    first = flmigrate(tree, python, "-k", "serve", "--keep-servers", checkpoint=checkpoint, port=port)
    assert first.outcomes("10") == {"10": "passed"}, first.output[-3000:]
    assert first.summary["server"]["reused"] is False and "kept the server on port" in first.result.stdout
    assert processes_mentioning(str(checkpoint)), "--keep-servers did not keep the server"

    second = flmigrate(tree, python, "-k", "serve", checkpoint=checkpoint, port=port)
    assert second.outcomes("10") == {"10": "passed"}, second.output[-3000:]
    assert (
        second.summary["server"]["reused"] is True and second.summary["server"]["pid"] == first.summary["server"]["pid"]
    )
    assert f"reusing the server kept on port {port}" in second.result.stdout
    assert second.summary["benchmark"]["earlier_run"] is True  # step 9 did not run: its figures are kept

    stop = subprocess.run(
        [sys.executable, "-m", "pytest", "--stop-servers", "-p", "no:cacheprovider"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
    )
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
    run = flmigrate(tree, python, "-k", "serve", checkpoint=broken, port=port)
    assert run.outcomes("10") == {"10": "failed"}
    assert run.summary["steps"]["10"]["reason"].startswith("local server exited before")
    assert "/health answered" in run.result.stdout
    tail = run.result.stdout.split("/health answered", 1)[1]
    assert "Error" in tail, tail[:3000]  # the log's last lines are in the test's message
    assert not processes_mentioning(str(broken))
    assert not (serve.state_dir() / f"port-{port}.json").exists()


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


FUNCTIONAL_FAILURE = """def test_generation_on_gpu():
    raise RuntimeError("CUDA is not available")
"""


def test_unit_test_broken_by_the_migration_fails_step_7_naming_it(pinned_python, checkpoint, tmp_path):
    tree, python = plugin_tree(
        tmp_path,
        pinned_python,
        {
            "tests/unit_tests/test_guard.py": BROKEN_BY_MIGRATION,
            "tests/functional_tests/test_needs_gpu.py": FUNCTIONAL_FAILURE,
        },
    )
    run = flmigrate(
        tree, python, "-k", "baseline or step04 or step05 or regression or functional", checkpoint=checkpoint
    )
    summary = run.summary
    assert run.outcomes("1", "4", "5", "7", "8") == {
        "1": "passed",
        "4": "passed",
        "5": "passed",
        "7": "failed",
        "8": "passed",
    }
    # step 8: the failure is reported (a warning, the summary, the report), and blocks nothing
    failing = "tests/functional_tests/test_needs_gpu.py::test_generation_on_gpu"
    assert summary["tests"]["functional"]["failing"] == [failing]
    assert f"functional test(s) failed (reported, not blocking): {failing}" in run.result.stdout
    assert f"failing (reported, not blocking): {failing}" in (tree / "reports" / MODEL / "report.md").read_text()
    reason = summary["steps"]["7"]["reason"]
    assert reason.startswith(
        "1 new unit test failure(s) since the step 1 baseline: tests/unit_tests/test_guard.py::test_no_model_migrated_yet "
        "(pre-existing, not counted: tests/unit_tests/test_guard.py::test_already_broken)"
    ), reason
    assert summary["tests"]["baseline"]["failing"] == ["tests/unit_tests/test_guard.py::test_already_broken"]

    # a later step-7-only run compares with the baseline step 1 saved
    again = flmigrate(tree, python, "-k", "regression", checkpoint=checkpoint).summary
    assert again["steps"]["7"]["outcome"] == "failed" and "test_no_model_migrated_yet" in again["steps"]["7"]["reason"]


def test_migrated_file_that_fails_to_import_fails_step_4_with_the_error(pinned_python, checkpoint, tmp_path):
    tree, python = plugin_tree(tmp_path, pinned_python)
    junit = tmp_path / "junit.xml"
    # without P1 the relative `from .utils import ...` of upstream stays: vllm_fl.models.utils does not exist
    run = flmigrate(tree, python, "--patches", "P2", "-k", "step04 or step05", junit=junit, checkpoint=checkpoint)
    assert run.outcomes("4", "5") == {"4": "failed", "5": "blocked"}
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
    assert first_line_of_step_1(flmigrate(tree, pinned_python, "-k", "baseline").summary) == (
        f"the plugin is not installed in the env of --vllm-python {pinned_python} (no vllm_fl importable); "
        f"install it: {pinned_python} -m pip install --no-deps -e {tree}"
    )


def test_env_without_pytest(upstream_python, tmp_path):
    tree, python = plugin_tree(tmp_path, upstream_python)  # the upstream env holds vLLM, not pytest
    assert first_line_of_step_1(flmigrate(tree, python, "-k", "baseline").summary) == (
        f"--vllm-python {python}: pytest is not installed in that env; install it there: {python} -m pip install pytest"
    )


@pytest.mark.parametrize(
    "python, expected",
    [
        (
            "/nonexistent/bin/python",
            "--vllm-python /nonexistent/bin/python: no such interpreter; pass the python of the env "
            "that holds vLLM 0.13.0 and the plugin",
        ),
        (
            sys.executable,
            f"--vllm-python {sys.executable}: no vLLM importable there; pass the python of the env that holds "
            "vLLM 0.13.0 and the plugin",
        ),
    ],
)
def test_vllm_python_missing_or_without_vllm(tmp_path, python, expected):
    tree = tmp_path / "plugin"
    shutil.copytree(EXAMPLE_PLUGIN, tree)
    assert first_line_of_step_1(flmigrate(tree, python, "-k", "baseline").summary) == expected


def test_config_bridged_from_transformers_5_imports_in_the_pinned_env(pinned_python, tmp_path):
    """glm4_moe_lite from vLLM 0.15.0 (transformers<5): its Glm4MoeLiteConfig exists only in transformers 5
    (a @strict dataclass). Steps 2-5 pass, the smoke importing the model and its bridge included, and
    the pinned transformers 4.57 builds the bridged config from a config.json's fields."""
    tree, python = plugin_tree(tmp_path, pinned_python)
    run = flmigrate(
        tree,
        python,
        "--upstream",
        "pypi:vllm==0.15.0",
        "-k",
        "step02 or step03 or step04 or step05",
        model="glm4_moe_lite",
    )
    assert run.outcomes("2", "3", "4", "5") == dict.fromkeys("2345", "passed"), run.output[-5000:]
    probe = (
        "from vllm_fl.configs.glm4_moe_lite import Glm4MoeLiteConfig as C\n"
        "c = C.from_dict({'num_hidden_layers': 3, 'pad_token_id': 7, 'first_k_dense_replace': 1})\n"
        "print(c.model_type, c.mlp_layer_types, c.pad_token_id, c.first_k_dense_replace, c.num_local_experts)\n"
    )
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[-2] == "glm4_moe_lite ['dense', 'sparse', 'sparse'] 7 1 64"
