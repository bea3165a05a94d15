"""Step 11 inside ``pytest --model ...``: one test per prompt, phases, summary.json, failure output.

The GT and local servers are stub OpenAI servers on loopback (the runtime tier serves real
vLLM); ``-k e2e`` deselects the other steps, so no vLLM tree or env is needed. The local stub
stands in for step 10's server through the ``local_server_url`` fixture (see conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from pytest_flmigrate.servers.ports import free_port
from tests.e2e.conftest import outcomes


def summary(plugin_tree: Path) -> dict:
    return json.loads((plugin_tree / "reports/tiny/summary.json").read_text())


def e2e_args(gt_url: str | None, *extra: str) -> tuple[str, ...]:
    return ("--model", "tiny", "-k", "e2e", *(("--gt-url", gt_url) if gt_url else ()), *extra)


def counts(passed: int = 0, failed: int = 0, skipped: int = 0) -> dict[str, int]:
    return {"passed": passed, "failed": failed, "skipped": skipped, "errors": 0}


def test_all_phase_matches_and_fills_summary(run_suite, plugin_tree, stub, tmp_path):
    gt, local = stub(model="/gt/tiny"), stub(model="/local/tiny")
    junit = tmp_path / "junit.xml"
    result = run_suite(*e2e_args(gt.url, "--junitxml", str(junit)), local_url=local.url)
    assert outcomes(result) == counts(passed=5)
    data = summary(plugin_tree)
    assert data["steps"]["11"]["outcome"] == "passed"
    e2e = data["e2e"]
    assert list(e2e["prompts"]) == ["t1", "t2", "t3", "t4", "t5"]
    assert e2e["matched"] == 5 and e2e["compared"] == 5 and e2e["phase"] == "all" and e2e["token_match_count"] == 32
    assert e2e["gt"] == {"url": gt.url, "source": f"--gt-url {gt.url}", "model": "/gt/tiny"}
    assert e2e["local"] == {"url": local.url, "model": "/local/tiny"}
    t3 = e2e["prompts"]["t3"]
    assert (t3["verdict"], t3["match"], t3["diverge_at"], t3["tokens_compared"]) == ("match", True, None, 32)
    assert (t3["gt"], t3["local"]) == ("collected", "collected")
    assert sorted(p.name for p in (plugin_tree / "reports/tiny/e2e/gt").iterdir()) == [
        f"t{i}.json" for i in range(1, 6)
    ]
    assert (plugin_tree / "reports/tiny/e2e/local/t5.json").is_file()
    report = (plugin_tree / "reports/tiny/report.md").read_text()
    assert "- E2E (text): ✅ (5/5 prompts matched, first 32 tokens)" in report
    assert "| t3 | match |  |  |" in report
    text = junit.read_text()
    assert text.count('<property name="e2e" value="match" />') == 5
    assert text.count('<property name="step" value="11" />') == 5


def test_compare_phase_needs_no_server(run_suite, plugin_tree, stub):
    gt, local = stub(), stub()
    assert outcomes(run_suite(*e2e_args(gt.url), local_url=local.url)) == counts(passed=5)
    gt.close()
    local.close()
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: any request would fail
    result = run_suite(*e2e_args(dead, "--e2e-phase", "compare"), local_url=dead)
    assert outcomes(result) == counts(passed=5)
    prompts = summary(plugin_tree)["e2e"]["prompts"]
    assert {p["gt"] for p in prompts.values()} == {"saved"} and {p["verdict"] for p in prompts.values()} == {"match"}


def test_compare_phase_without_saved_results_fails_naming_the_phase(run_suite, plugin_tree):
    result = run_suite(*e2e_args(None, "--e2e-phase", "compare", "-k", "t1"))
    assert outcomes(result) == counts(failed=1)
    result.stdout.fnmatch_lines(
        ["t1: no saved gt result at *e2e/gt/t1.json; collect it first with --e2e-phase gt (or all)"]
    )


def test_gt_phase_then_all_reuses_saved_gt_without_a_gt_source(run_suite, plugin_tree, stub):
    gt, local = stub(), stub()
    assert outcomes(run_suite(*e2e_args(gt.url, "--e2e-phase", "gt"))) == counts(passed=5)  # no local server needed
    assert not [r for r in local.requests]
    result = run_suite(*e2e_args(None), local_url=local.url)  # no GT option at all
    assert outcomes(result) == counts(passed=5)
    assert {p["gt"] for p in summary(plugin_tree)["e2e"]["prompts"].values()} == {"reused"}


def test_early_divergence_fails_each_prompt_with_a_readable_report(run_suite, plugin_tree, stub):
    gt, local = stub(), stub(diverge={2: (77, " broken", False)})
    result = run_suite(*e2e_args(gt.url), local_url=local.url)
    assert outcomes(result) == counts(failed=5)
    assert "Traceback" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "t1: local diverges from GT at token 2 (0-based) of 32: GT ' three' vs local ' broken' "
            "(early divergence: likely a code bug; check weight loading, TP sharding, op implementations)",
            "GT    token ids: [*, >>*<<, *",
            "local token ids: [*, >>77<<, *",
            "GT text:    ' Explain in three*",
            "local text: ' Explain in broken sentences*",
        ]
    )
    data = summary(plugin_tree)
    assert data["steps"]["11"]["outcome"] == "failed"
    assert data["steps"]["11"]["reason"].startswith("t1: local diverges from GT at token 2 (0-based) of 32")
    t1 = data["e2e"]["prompts"]["t1"]
    assert (t1["verdict"], t1["divergence"], t1["diverge_at"]) == ("diverged", "early", 2)
    assert data["e2e"]["diverged"] == 5
    report = (plugin_tree / "reports/tiny/report.md").read_text()
    assert "- E2E (text): ❌ (0/5 prompts matched, first 32 tokens)" in report
    assert "| t1 | diverged | 2 (early) | GT ' three' vs local ' broken' |" in report


def test_near_tie_passes_with_the_position_recorded(run_suite, plugin_tree, stub):
    # local picks GT's runner-up at token 10, and GT's token is local's runner-up there
    gt, local = stub(), stub(diverge={10: (99, " alt0", True)})
    result = run_suite(*e2e_args(gt.url, "-rA"), local_url=local.url)
    assert outcomes(result) == counts(passed=5)
    t2 = summary(plugin_tree)["e2e"]["prompts"]["t2"]
    assert (t2["verdict"], t2["diverge_at"], t2["divergence"], t2["passed"]) == ("near-tie", 10, "late", True)
    assert (
        "- E2E (text): ✅ (0/5 prompts matched, 5 near-tie(s), first 32 tokens)"
        in (plugin_tree / "reports/tiny/report.md").read_text()
    )


def test_a_one_sided_tie_is_a_late_divergence(run_suite, plugin_tree, stub):
    gt, local = stub(), stub(diverge={10: (99, " alt0", False)})  # GT's token is not in local's top 5
    result = run_suite(*e2e_args(gt.url, "-k", "t1"), local_url=local.url)
    assert outcomes(result) == counts(failed=1)
    result.stdout.fnmatch_lines(["t1: local diverges from GT at token 10 (0-based) of 32: * (late divergence: *"])


def test_gt_down_is_one_line_per_prompt(run_suite, plugin_tree, stub):
    local = stub()
    dead = f"http://127.0.0.1:{free_port()}"
    result = run_suite(*e2e_args(dead), local_url=local.url)
    assert outcomes(result) == counts(failed=5)
    line = f"GT server {dead}: connection refused after 3 attempts; start it or check --gt-url"
    out = result.stdout.str()
    # one line per prompt: the first prompt shows the error, the other four point at it
    assert "Traceback" not in out and out.count(f"\n{line}\n") == 1
    assert out.count("\nthe error of test_step11_e2e.py::test_e2e[t1-tiny], above\n") == 4
    assert summary(plugin_tree)["steps"]["11"]["reason"] == line


def test_local_down_names_step_10(run_suite, stub):
    gt = stub()
    dead = f"http://127.0.0.1:{free_port()}"
    result = run_suite(*e2e_args(gt.url, "-k", "t1"), local_url=dead)
    assert outcomes(result) == counts(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"local server {dead}: connection refused after 3 attempts; "
            "start it (step 10, vllm serve with the plugin) or check --port"
        ]
    )


def test_one_prompt_by_keyword(run_suite, plugin_tree, stub):
    gt, local = stub(), stub()
    result = run_suite("--model", "tiny", "-k", "e2e and t3", "--gt-url", gt.url, "-rA", local_url=local.url)
    assert outcomes(result) == counts(passed=1)
    result.stdout.fnmatch_lines(["PASSED *test_e2e?t3-tiny?*"])
    assert list(summary(plugin_tree)["e2e"]["prompts"]) == ["t3"]


def test_rerunning_one_prompt_keeps_the_others_verdicts(run_suite, plugin_tree, stub):
    gt, local = stub(), stub(diverge={0: (7, " nope", False)})
    run_suite(*e2e_args(gt.url), local_url=local.url)
    local.close()
    fixed = stub()
    result = run_suite("--model", "tiny", "-k", "e2e and t3", "--gt-url", gt.url, local_url=fixed.url)
    assert outcomes(result) == counts(passed=1)
    e2e = summary(plugin_tree)["e2e"]
    assert list(e2e["prompts"]) == ["t1", "t2", "t3", "t4", "t5"]
    assert e2e["prompts"]["t3"]["verdict"] == "match" and "earlier_run" not in e2e["prompts"]["t3"]
    assert {e2e["prompts"][p]["verdict"] for p in ("t1", "t2", "t4", "t5")} == {"diverged"}
    assert all(e2e["prompts"][p]["earlier_run"] for p in ("t1", "t2", "t4", "t5"))
    assert (e2e["matched"], e2e["diverged"]) == (1, 4)
    assert (
        "- E2E (text): ❌ (1/5 prompts matched, first 32 tokens)"
        in (plugin_tree / "reports/tiny/report.md").read_text()
    )


def test_without_a_gt_source_prompts_are_skipped_with_the_fix(run_suite, plugin_tree):
    result = run_suite(*e2e_args(None, "-rs"))
    assert outcomes(result) == counts(skipped=5)
    assert summary(plugin_tree)["steps"]["11"]["outcome"] == "skipped"
    result.stdout.fnmatch_lines(["*t1: no ground-truth server: pass --gt-url URL, --gt-python PATH*"])


def test_text_only_model_skips_multimodal_prompts(run_suite, plugin_tree, stub, tmp_path):
    gt, local = stub(), stub()
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "config.json").write_text(json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}))
    result = run_suite(
        *e2e_args(gt.url, "--e2e-mode", "all", "--served-model", str(weights), "-rs"), local_url=local.url
    )
    assert outcomes(result) == counts(passed=5, skipped=5)
    result.stdout.fnmatch_lines(["*tiny is a text-only model: multimodal prompt m1 skipped*"])
    data = summary(plugin_tree)
    assert data["e2e"]["prompts"]["m4"]["verdict"] == "skipped"
    assert data["steps"]["11"]["outcome"] == "passed" and data["steps"]["11"]["reason"] == ""


def test_multimodal_model_sends_the_images(run_suite, plugin_tree, stub, trees):
    upstream_registry = trees[0] / "vllm/model_executor/models/registry.py"
    upstream_registry.write_text(upstream_registry.read_text().replace("_TEXT_GENERATION_MODELS", "_MULTIMODAL_MODELS"))
    gt, local = stub(), stub()
    result = run_suite(*e2e_args(gt.url, "--e2e-mode", "multimodal"), local_url=local.url)
    assert outcomes(result) == counts(passed=5)
    posted = [body for method, _, body in gt.requests if method == "POST"]
    assert len(posted) == 5 and all(b["messages"][0]["content"][0]["type"] == "image_url" for b in posted)


def pooling_registry(trees) -> None:
    upstream_registry = trees[0] / "vllm/model_executor/models/registry.py"
    upstream_registry.write_text(upstream_registry.read_text().replace("_TEXT_GENERATION_MODELS", "_EMBEDDING_MODELS"))


def test_pooling_model_compares_its_pooled_vectors(run_suite, plugin_tree, stub, trees):
    pooling_registry(trees)
    gt, local = stub(), stub()
    result = run_suite(*e2e_args(gt.url), local_url=local.url)
    assert outcomes(result) == counts(passed=5)
    posted = [(path, body) for method, path, body in gt.requests if method == "POST"]
    assert len(posted) == 5 and all(path == "/pooling" and body["task"] == "embed" for path, body in posted)
    e2e = summary(plugin_tree)["e2e"]
    assert e2e["pooling_task"] == "embed" and e2e["matched"] == 5
    assert e2e["prompts"]["t1"]["basis"] == "pooled vectors"
    report = (plugin_tree / "reports/tiny/report.md").read_text()
    assert "- E2E (text): ✅ (5/5 prompts matched, pooled vectors (embed))" in report


def test_pooling_model_with_a_wrong_vector_fails_each_prompt_naming_it(run_suite, plugin_tree, stub, trees):
    pooling_registry(trees)
    gt, local = stub(), stub(pooled={0: -1.0})  # the local pooler's vector half negated
    result = run_suite(*e2e_args(gt.url), local_url=local.url)
    assert outcomes(result) == counts(failed=5)
    result.stdout.fnmatch_lines(["*t1: local's pooled output differs from GT's at vector 0 (0-based) of 1: cosine*"])
    assert summary(plugin_tree)["e2e"]["diverged"] == 5


def test_user_prompt_file(run_suite, stub, tmp_path):
    gt, local = stub(), stub()
    prompts = tmp_path / "mine.json"
    prompts.write_text(json.dumps({"prompts": [{"id": "hello", "text": "Say hello."}, {"id": "bye", "text": "Bye."}]}))
    result = run_suite(*e2e_args(gt.url, "--e2e-prompts", str(prompts), "-rA"), local_url=local.url)
    assert outcomes(result) == counts(passed=2)
    result.stdout.fnmatch_lines(["PASSED *test_e2e?hello-tiny?*", "PASSED *test_e2e?bye-tiny?*"])


def test_bad_prompt_file_stops_the_run_with_one_line(run_suite, tmp_path):
    prompts = tmp_path / "mine.json"
    prompts.write_text("[{")
    result = run_suite("--model", "tiny", "--e2e-prompts", str(prompts))
    assert result.ret != 0
    result.stderr.fnmatch_lines([f"ERROR: --e2e-prompts {prompts}: not valid JSON (line 1, column 3*"])
