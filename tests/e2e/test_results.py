"""Saved results and the phases gt | local | compare | all, through the runner, against stub servers."""

from __future__ import annotations

import json

import pytest

from pytest_flmigrate.e2e.generation import Generation
from pytest_flmigrate.e2e.phases import Runner, ServerRef
from pytest_flmigrate.e2e.prompts import Prompt, builtin_prompts
from pytest_flmigrate.e2e.results import ResultStore, phase_plan
from pytest_flmigrate.errors import FlmigrateError

T1, T2 = builtin_prompts()[:2]


def never() -> str:
    raise AssertionError("this phase must not contact this server")


def runner(tmp_path, phase: str, count: int = 8, max_tokens: int = 12) -> Runner:
    return Runner(
        ResultStore(tmp_path / "e2e"),
        phase=phase,
        token_match_count=count,
        max_tokens=max_tokens,
        client_options={"attempts": 1},
    )


def test_generation_round_trips_through_json():
    generation = Generation(
        "m", "hi", [1, 2], [" h", "i"], [{" h": -0.1, " x": -2.0}, {"i": -0.2}], "stop", [5], {"usage": {}}
    )
    assert Generation.from_dict(json.loads(json.dumps(generation.to_dict()))) == generation


def test_phase_plans():
    assert phase_plan("gt").collect_gt and not phase_plan("gt").reuse_gt and not phase_plan("gt").compare
    assert phase_plan("local").collect_local and not phase_plan("local").collect_gt
    compare = phase_plan("compare")
    assert compare.compare and not compare.collect_gt and not compare.collect_local
    assert phase_plan("all") == type(compare)(collect_gt=True, reuse_gt=True, collect_local=True, compare=True)
    with pytest.raises(FlmigrateError, match="--e2e-phase 'both': expected one of gt, local, compare, all"):
        phase_plan("both")


def test_phases_gt_then_local_then_compare(tmp_path, stub):
    gt_server, local_server = stub(model="/gt/tiny"), stub(model="/local/tiny")
    gt_run = runner(tmp_path, "gt")
    outcome = gt_run.run(T1, {"gt": lambda: gt_server.url, "local": never})
    assert outcome.comparison is None and outcome.passed and outcome.sides == {"gt": "collected"}
    assert outcome.message() == "t1: gt collected (12 tokens); no comparison in --e2e-phase gt"
    saved = json.loads((tmp_path / "e2e/gt/t1.json").read_text())
    assert saved["prompt_fingerprint"] == T1.fingerprint() and saved["server"] == {
        "url": gt_server.url,
        "model": "/gt/tiny",
    }
    assert saved["request"] == {"max_tokens": 12, "temperature": 0, "seed": 1234, "top_logprobs": 5}
    assert len(saved["generation"]["token_ids"]) == 12
    assert gt_run.store.summary()["prompts"]["t1"] == {
        "verdict": "collected",
        "kind": "text",
        "phase": "gt",
        "gt": "collected",
        "tokens": {"gt": 12},
    }

    runner(tmp_path, "local").run(T1, {"gt": never, "local": lambda: local_server.url})
    assert (tmp_path / "e2e/local/t1.json").is_file()

    compare_run = runner(tmp_path, "compare")
    outcome = compare_run.run(T1, {"gt": never, "local": never})
    assert outcome.comparison.verdict == "match" and outcome.sides == {"gt": "saved", "local": "saved"}
    summary = compare_run.store.summary()
    assert summary["matched"] == 1 and summary["compared"] == 1 and summary["phase"] == "compare"
    assert summary["prompts"]["t1"]["tokens_compared"] == 8


def test_all_reuses_saved_gt_and_needs_no_gt_server(tmp_path, stub):
    gt_server, local_server = stub(), stub()
    runner(tmp_path, "gt").run(T1, {"gt": lambda: gt_server.url, "local": never})
    again = runner(tmp_path, "all")
    assert not again.needs("gt", T1) and again.needs("gt", T2) and again.needs("local", T1)
    outcome = again.run(T1, {"gt": never, "local": lambda: ServerRef(local_server.url, "step 10")})
    assert outcome.sides == {"gt": "reused", "local": "collected"} and outcome.comparison.verdict == "match"
    assert again.store.info["local"] == {"url": local_server.url, "source": "step 10", "model": "/models/tiny"}


def test_all_collects_gt_again_when_the_request_changed(tmp_path, stub):
    gt_server, local_server = stub(), stub()
    runner(tmp_path, "gt", max_tokens=12).run(T1, {"gt": lambda: gt_server.url, "local": never})
    calls = []

    def gt_url():
        calls.append(1)
        return gt_server.url

    outcome = runner(tmp_path, "all", max_tokens=16).run(T1, {"gt": gt_url, "local": lambda: local_server.url})
    assert calls == [1] and outcome.sides["gt"] == "collected"


def test_compare_without_saved_results_says_which_phase_to_run(tmp_path):
    compare_run = runner(tmp_path, "compare")
    with pytest.raises(FlmigrateError) as caught:
        compare_run.run(T1, {"gt": never, "local": never})
    assert caught.value.message == (
        f"t1: no saved gt result at {tmp_path / 'e2e/gt/t1.json'}; collect it first with --e2e-phase gt (or all)"
    )
    assert compare_run.store.summary()["prompts"]["t1"]["verdict"] == "error"


def test_compare_refuses_results_of_another_prompt(tmp_path, stub):
    server = stub()
    runner(tmp_path, "gt").run(T1, {"gt": lambda: server.url, "local": never})
    runner(tmp_path, "local").run(T1, {"gt": never, "local": lambda: server.url})
    changed = Prompt("t1", "A different question.")
    with pytest.raises(FlmigrateError, match="was made from a different prompt; collect it again with --e2e-phase gt"):
        runner(tmp_path, "compare").run(changed, {"gt": never, "local": never})


def test_corrupt_saved_file_is_one_line(tmp_path):
    store = ResultStore(tmp_path / "e2e")
    store.path("gt", "t1").parent.mkdir(parents=True)
    store.path("gt", "t1").write_text("{broken")
    with pytest.raises(FlmigrateError, match="saved gt result is unreadable .*delete it and collect it again"):
        store.load("gt", T1)


def test_divergence_recorded_in_summary(tmp_path, stub):
    gt_server = stub()
    local_server = stub(diverge={1: (7, " nope", False)})
    all_run = runner(tmp_path, "all")
    outcome = all_run.run(T1, {"gt": lambda: gt_server.url, "local": lambda: local_server.url})
    assert not outcome.passed and outcome.comparison.diverge_at == 1
    entry = all_run.store.summary()["prompts"]["t1"]
    assert entry["verdict"] == "diverged" and entry["divergence"] == "early" and entry["diverge_at"] == 1
    assert entry["gt"] == "collected" and entry["local"] == "collected"
    all_run.skip(T2, "text-only")
    summary = all_run.store.summary()
    assert summary["diverged"] == 1 and summary["compared"] == 1
    assert summary["prompts"]["t2"] == {"verdict": "skipped", "kind": "text", "phase": "all", "reason": "text-only"}


def test_empty_store_summarises_to_none(tmp_path):
    assert ResultStore(tmp_path).summary() is None
    assert ResultStore(tmp_path).summary({"phase": "all", "prompts": {}}) is None


EARLIER = {
    "phase": "all",
    "gt": {"url": "http://gt"},
    "matched": 1,
    "near_ties": 0,
    "diverged": 1,
    "compared": 2,
    "prompts": {"t1": {"verdict": "diverged", "kind": "text"}, "t2": {"verdict": "match", "kind": "text"}},
}


def test_prompts_not_rerun_keep_their_earlier_verdict(tmp_path, stub):
    server = stub()
    rerun = runner(tmp_path, "all")
    rerun.run(T1, {"gt": lambda: server.url, "local": lambda: server.url})  # -k "e2e and t1"
    summary = rerun.store.summary(EARLIER)
    assert list(summary["prompts"]) == ["t1", "t2"]
    assert summary["prompts"]["t1"]["verdict"] == "match" and "earlier_run" not in summary["prompts"]["t1"]
    assert summary["prompts"]["t2"] == {"verdict": "match", "kind": "text", "earlier_run": True}
    assert (summary["matched"], summary["diverged"], summary["compared"]) == (2, 0, 2)
    assert summary["gt"]["url"] == server.url and summary["results_dir"] == str(rerun.store.root)


def test_a_session_without_e2e_carries_the_earlier_results(tmp_path):
    summary = ResultStore(tmp_path).summary(EARLIER)  # e.g. -k serve
    assert summary == {
        **EARLIER,
        "prompts": {pid: {**entry, "earlier_run": True} for pid, entry in EARLIER["prompts"].items()},
    }


def replaying(tmp_path, phase: str, kept: ResultStore, max_tokens: int = 12) -> Runner:
    return Runner(
        ResultStore(tmp_path / "model" / "e2e"),
        phase=phase,
        token_match_count=8,
        max_tokens=max_tokens,
        client_options={"attempts": 1},
        replay=lambda: kept,
    )


def test_a_collected_gt_result_is_kept_in_the_replay_store_and_replayed_without_a_gt_server(tmp_path, stub):
    gt_server, local_server = stub(model="/tiny/m"), stub(model="/tiny/m")
    kept = ResultStore(tmp_path / "controls" / "k")
    first = replaying(tmp_path / "one", "all", kept).run(
        T1, {"gt": lambda: gt_server.url, "local": lambda: local_server.url}
    )
    assert first.sides["gt"] == "collected"
    assert json.loads((tmp_path / "controls/k/gt/t1.json").read_text())["server"] == {
        "url": gt_server.url,
        "model": "/tiny/m",
    }

    again = replaying(tmp_path / "two", "all", kept)
    assert not again.needs("gt", T1) and again.needs("gt", T2)
    outcome = again.run(T1, {"gt": never, "local": lambda: local_server.url})
    assert outcome.sides == {"gt": "replayed", "local": "collected"} and outcome.comparison.verdict == "match"
    assert again.store.info["gt"] == {"url": gt_server.url, "model": "/tiny/m", "replayed_from": str(kept.root)}
    assert (tmp_path / "two/model/e2e/gt/t1.json").exists()  # the model's own store has it for --e2e-phase compare
    assert runner(tmp_path / "two/model", "compare").run(T1, {"gt": never, "local": never}).passed


def test_a_kept_gt_result_of_other_sampling_is_not_replayed(tmp_path, stub):
    gt_server, local_server = stub(), stub()
    kept = ResultStore(tmp_path / "controls" / "k")
    replaying(tmp_path / "one", "gt", kept, max_tokens=12).run(T1, {"gt": lambda: gt_server.url, "local": never})
    again = replaying(tmp_path / "two", "all", kept, max_tokens=16)
    assert again.needs("gt", T1)
    assert again.run(T1, {"gt": lambda: gt_server.url, "local": lambda: local_server.url}).sides["gt"] == "collected"


def test_phase_gt_collects_afresh_even_when_a_result_is_kept(tmp_path, stub):
    gt_server = stub()
    kept = ResultStore(tmp_path / "controls" / "k")
    replaying(tmp_path / "one", "gt", kept).run(T1, {"gt": lambda: gt_server.url, "local": never})
    again = replaying(tmp_path / "two", "gt", kept)
    assert again.needs("gt", T1)
    assert again.run(T1, {"gt": lambda: gt_server.url, "local": never}).sides == {"gt": "collected"}
