"""A pooling model judged by its pooled vectors, with --tiny: upstream 0.32's ``bert``.

``BertModel`` is an embedding model the 0.13 pin also has; upstream's ``bert.py`` builds its
poolers from the pooler package the pin lacks (``DispatchPooler``, the ``seqwise`` and ``tokwise``
poolers and heads), which step 4 backports or translates onto the pin's. Migrated as an override
into a copy of the example plugin, its tiny checkpoint is served by the upstream env (the control)
and by the pin with the plugin: step 10 pools (``/pooling``, task ``embed``) instead of chatting,
and step 11 compares each prompt's vector with the control's (cosine 0.999, vLLM's own tolerance).
A migration that computes other vectors (the position embeddings dropped on purpose) fails step 11
naming the vector. Skips, naming the command, when the CPU envs are missing.
"""

from __future__ import annotations

import pytest

from pytest_flmigrate.servers.ports import free_port
from tests.runtime.suite_run import flmigrate, junit_failure, plugin_tree

MODEL, ARCH = "bert", "BertModel"
TEXT_PROMPTS = ["t1", "t2", "t3", "t4", "t5"]
STEPS = "not baseline and not regression and not functional"
SUMMED = "embeddings = inputs_embeds + token_type_embeddings + position_embeddings"
NO_POSITIONS = "embeddings = inputs_embeds + token_type_embeddings"


def text_entries(summary: dict) -> dict[str, dict]:
    return {prompt: entry for prompt, entry in summary["e2e"]["prompts"].items() if entry["kind"] == "text"}


@pytest.fixture(scope="module")
def pooled(pinned_python, upstream_python, tmp_path_factory):
    """Steps 2-6 and 9-11 of bert with --tiny on a fresh tree."""
    tree, python = plugin_tree(tmp_path_factory.mktemp("pooling"), pinned_python)
    run = flmigrate(tree, python, "-k", STEPS, tiny_gt=upstream_python, model=MODEL, port=free_port())
    return tree, python, run


def test_an_embedding_model_is_judged_by_its_pooled_vectors(pooled):
    _, _, run = pooled
    steps = ("4", "5", "9", "10", "11")
    assert run.outcomes(*steps) == dict.fromkeys(steps, "passed"), run.output[-6000:]
    assert run.summary["tiny"]["arch"] == ARCH
    compat = {
        f["path"] for f in run.summary["files"] if f["path"].startswith("vllm_fl/compat/model_executor/layers/pooler")
    }
    assert compat, "upstream's pooler package reached the pin through step 4's copies"
    e2e = run.summary["e2e"]
    assert e2e["pooling_task"] == "embed"
    entries = text_entries(run.summary)
    assert sorted(entries) == TEXT_PROMPTS
    assert all(entry["verdict"] == "match" and entry["basis"] == "pooled vectors" for entry in entries.values()), (
        entries
    )
    assert "pooled (embed) 1 vector(s)" in run.output


def test_a_migration_computing_other_vectors_fails_step_11_naming_the_vector(
    pooled, pinned_python, upstream_python, tmp_path
):
    source, _, _ = pooled
    tree, python = plugin_tree(tmp_path, pinned_python, source=source)  # with the saved GT results
    model_file = tree / "vllm_fl" / "models" / f"{MODEL}.py"
    text = model_file.read_text()
    assert text.count(SUMMED) == 1
    model_file.write_text(text.replace(SUMMED, NO_POSITIONS))
    junit = tmp_path / "junit.xml"
    run = flmigrate(tree, python, "-k", "e2e", tiny_gt=upstream_python, model=MODEL, port=free_port(), junit=junit)

    assert run.outcomes("11") == {"11": "failed"}, run.output[-4000:]
    entries = text_entries(run.summary)
    assert {prompt: entry["verdict"] for prompt, entry in entries.items()} == dict.fromkeys(TEXT_PROMPTS, "diverged")
    assert {entry["gt"] for entry in entries.values()} == {"reused"}
    first = junit_failure(junit, "test_e2e[t1-").strip().splitlines()[0]
    assert "t1: local's pooled output differs from GT's at vector 0 (0-based) of 1: cosine similarity" in first
