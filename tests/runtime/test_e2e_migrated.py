"""Step 11 on real servers, for the model migrated by the full run (``migrated`` in conftest.py).

The full run already compared the text prompts against a GT server started with ``--gt-python``.
Here: the GT started over a real sshd instead; the saved results compared again with no server;
and a migration broken on purpose (its weight-loading mapping swaps two tensors) caught by E2E as
an early divergence. Skips, naming the command, when the envs or sshd are missing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from pytest_flmigrate import envs
from pytest_flmigrate.servers.cpu_args import CPU_ARGS
from pytest_flmigrate.servers.ports import free_port
from tests.runtime.suite_run import MODEL, flmigrate, junit_failure, plugin_tree, processes_mentioning

TEXT_PROMPTS = ["t1", "t2", "t3", "t4", "t5"]


def text_entries(summary: dict) -> dict[str, dict]:
    return {prompt: entry for prompt, entry in summary["e2e"]["prompts"].items() if entry["kind"] == "text"}


@pytest.mark.remote
def test_gt_started_over_ssh_matches_the_migrated_model(migrated, sshd, upstream_python, checkpoint, tmp_path):
    tree, python, port, _ = migrated
    rpc = Path(tempfile.mkdtemp(prefix="flm-gt-"))  # vLLM's socket paths must stay under 108 bytes
    state_dir = tmp_path / "gt-state"
    gt_port = free_port()
    config = tmp_path / "gt.json"
    config.write_text(
        json.dumps(
            {
                "key_file": str(sshd.client_key),
                "known_hosts": str(sshd.known_hosts),
                "connect_timeout": 5,
                "python": str(upstream_python),
                "model": str(checkpoint),
                "host": "127.0.0.1",
                "port": gt_port,
                "serve_args": list(CPU_ARGS),
                "state_dir": str(state_dir),
                "health_timeout": 600,
                # sshd gives the server a fresh login environment: the vLLM settings travel in the config
                "env": {**envs.vllm_env(rpc, base={}), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
            }
        )
    )
    reports = tmp_path / "reports"  # fresh: no saved GT result to reuse
    try:
        run = flmigrate(
            tree,
            python,
            "-k",
            "e2e",
            "--gt-ssh",
            str(sshd.target),
            "--gt-config",
            str(config),
            checkpoint=checkpoint,
            port=port,
            reports=reports,
        )
    finally:
        shutil.rmtree(rpc, ignore_errors=True)
    assert run.outcomes("11") == {"11": "passed"}, run.output[-6000:]
    e2e = run.summary["e2e"]
    assert e2e["gt"] == {
        "url": f"http://127.0.0.1:{gt_port}",
        "source": f"--gt-ssh {sshd.target}",
        "model": str(checkpoint),
    }
    entries = text_entries(run.summary)
    assert sorted(entries) == TEXT_PROMPTS
    assert all(entry["passed"] and entry["gt"] == "collected" for entry in entries.values()), entries
    # both vLLM versions answered with token ids, top logprobs per token and the same prompt tokens
    # (top logprobs are keyed by token string: byte pieces that decode alike share one key)
    for prompt in TEXT_PROMPTS:
        gt, local = (
            json.loads((reports / MODEL / "e2e" / side / f"{prompt}.json").read_text())["generation"]
            for side in ("gt", "local")
        )
        for side in (gt, local):
            assert len(side["top_logprobs"]) == len(side["token_ids"]) > 0
            assert all(1 <= len(top) <= 5 for top in side["top_logprobs"])
        assert gt["prompt_token_ids"] and gt["prompt_token_ids"] == local["prompt_token_ids"]
    # the GT server's log came back over SSH; the server it started is stopped, the local one too
    assert "Starting vLLM server on http://127.0.0.1:" in (reports / MODEL / "logs" / "gt-server.log").read_text()
    assert not processes_mentioning(str(checkpoint))
    assert f"Accepted publickey for {sshd.user}" in sshd.log.read_text()


def test_saved_results_are_compared_again_without_any_server(migrated):
    tree, python, port, _ = migrated
    run = flmigrate(tree, python, "-k", "e2e", "--e2e-phase", "compare", "--vllm-python", "/nonexistent/python")
    assert run.outcomes("11") == {"11": "passed"}, run.output[-4000:]
    entries = text_entries(run.summary)
    assert sorted(entries) == TEXT_PROMPTS
    assert {(entry["gt"], entry["local"]) for entry in entries.values()} == {("saved", "saved")}
    assert "url" not in run.summary["e2e"].get("local", {})  # no client was made
    print(f"--e2e-phase compare on saved results: {run.seconds:.1f} s")


# A weight-loading mapping broken on purpose: the checkpoint's embedding and LM head (same shape,
# untied) swap places, so every weight loads, the server starts, and the tokens are wrong.
SWAPPED_MAPPER = """WeightsMapper(
        orig_to_new_substr={
            "model.embed_tokens.": "swap.",
            "lm_head.": "model.embed_tokens.",
            "swap.": "lm_head.",
        },
        orig_to_new_prefix={"model.mtp_layers.": None},
    )"""


def test_a_broken_weight_mapping_fails_e2e_with_an_early_divergence(migrated, pinned_python, checkpoint, tmp_path):
    source, *_ = migrated
    tree, python = plugin_tree(tmp_path, pinned_python, source=source)  # with the saved GT results
    model_file = tree / "vllm_fl" / "models" / "mimo.py"
    text = model_file.read_text()
    mapper = 'WeightsMapper(orig_to_new_prefix={"model.mtp_layers.": None})'
    assert mapper in text
    model_file.write_text(text.replace(mapper, SWAPPED_MAPPER))
    junit = tmp_path / "junit.xml"
    run = flmigrate(tree, python, "-k", "e2e", checkpoint=checkpoint, port=free_port(), junit=junit)

    assert run.outcomes("11") == {"11": "failed"}, run.output[-4000:]
    entries = text_entries(run.summary)
    assert {prompt: (entry["verdict"], entry["divergence"]) for prompt, entry in entries.items()} == dict.fromkeys(
        TEXT_PROMPTS, ("diverged", "early")
    ), entries
    assert {entry["gt"] for entry in entries.values()} == {"reused"}  # no GT server needed again
    message = junit_failure(junit, "test_e2e[t1-")
    first, *detail = message.strip().splitlines()
    assert first.startswith(f"t1: local diverges from GT at token {entries['t1']['diverge_at']} (0-based) of 32: ")
    assert first.endswith(
        "(early divergence: likely a code bug; check weight loading, TP sharding, op implementations)"
    )
    assert any(line.startswith("GT    token ids: [") and ">>" in line for line in detail), message
    assert any(line.startswith("local text: ") for line in detail), message
    report = (tree / "reports" / MODEL / "report.md").read_text()
    assert "- E2E (text): ❌ (0/5 prompts matched, first 32 tokens)" in report
    assert "| t1 | diverged |" in report
