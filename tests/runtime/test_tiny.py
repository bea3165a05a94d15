"""--tiny on real vLLM: a new upstream model migrated and compared on a model synthesized for it.

``mistral`` (its unit carries ``Ministral3ForCausalLM``, a dense architecture transformers 5
has) is migrated from upstream vLLM into a copy of the example plugin (steps 2-6), then run through
steps 9-11 with ``--tiny``: the tiny model is synthesized in the upstream env (real checkpoint
names through the migrated ``load_weights``), the upstream env serves it first (the control, step
11's ground truth), then the pinned env with the plugin. Then: the same tree with its weight
mapping broken on purpose fails step 11 early, the synthesis is byte-identical in a fresh cache,
and a model upstream vLLM cannot run on CPU (``rnj1``) skips steps 9-11 with that reason. Skips, naming
the command, when the CPU envs are missing.

The migrated file is served as step 4 writes it, with no hand edit: upstream's
``LlamaDecoderLayer`` takes ``attn_layer_type`` and ``LlamaModel.forward`` takes ``t_cond``, the
0.13 pin's take neither (signature drift). Step 4 backports upstream's
``LlamaDecoderLayer`` into ``vllm_fl/compat/`` (P16) and drops the forwarded ``t_cond=None``
(P23: upstream's ``LlamaModel``, whose copy would declare a ``WeightsMapper`` field the pin lacks,
is refused).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_flmigrate import envs
from pytest_flmigrate.servers.cpu_args import CPU_ARGS
from pytest_flmigrate.servers.ports import free_port
from pytest_flmigrate.tiny import checkpoints, controls, sources
from pytest_flmigrate.tiny.synthesize import STAMP
from tests.runtime.suite_run import flmigrate, junit_failure, plugin_tree

DENSE = "mistral"
TEXT_PROMPTS = ["t1", "t2", "t3", "t4", "t5"]
STATIC_STEPS = "step02 or step04 or step05 or step06"
SERVE_ARGS = tuple(CPU_ARGS)  # the --serve-args suite_run.flmigrate passes
TINY_STEPS = "step09 or step10 or e2e"
MISTRAL_CONFIG = "transformers.models.mistral.configuration_mistral"


def text_entries(summary: dict) -> dict[str, dict]:
    return {prompt: entry for prompt, entry in summary["e2e"]["prompts"].items() if entry["kind"] == "text"}


@pytest.fixture(scope="module")
def migrated_dense(pinned_python, tmp_path_factory):
    """Steps 2-6 for the dense model on a fresh tree, as step 4 writes it."""
    tree, python = plugin_tree(tmp_path_factory.mktemp("tiny-dense"), pinned_python)
    return tree, python, flmigrate(tree, python, "-k", STATIC_STEPS, model=DENSE)


def forget_the_control(model: str, upstream_python: Path) -> None:
    """Remove what the control cache keeps for ``model``'s tiny checkpoint (if it was made before),
    so that the next run starts the control afresh."""
    version = envs.expected_vllm(envs.upstream_env())
    base = checkpoints.tiny_dir(model, version or "")
    for folder in base.parent.glob(f"{base.name}*"):  # every config source's tag (fields filled, ...)
        tiny = checkpoints.load(folder)
        if tiny is not None:
            for args in (SERVE_ARGS, SERVE_ARGS + tiny.serve_args):
                shutil.rmtree(controls.control_cache(tiny, str(upstream_python), args).root, ignore_errors=True)


@pytest.fixture(scope="module")
def dense(migrated_dense, upstream_python):
    """Steps 9-11 with --tiny on the migrated tree, as step 4 wrote it, the control started afresh."""
    tree, python, _ = migrated_dense
    forget_the_control(DENSE, upstream_python)
    run = flmigrate(tree, python, "-k", TINY_STEPS, tiny_gt=upstream_python, model=DENSE, port=free_port())
    return tree, python, run


def test_the_dense_model_migrates_without_hand_adaptation(migrated_dense):
    tree, _, run = migrated_dense
    steps = ("2", "4", "5", "6")
    assert run.outcomes(*steps) == dict.fromkeys(steps, "passed"), run.output[-4000:]
    assert run.summary["patches"].get("P23") == 1
    text = (tree / "vllm_fl" / "models" / f"{DENSE}.py").read_text()
    assert "from vllm_fl.compat.model_executor.models.llama import LlamaDecoderLayer\n" in text
    assert "attn_layer_type=MistralAttention" in text and "t_cond=t_cond" not in text


def test_a_new_dense_model_passes_steps_9_to_11_with_tiny(dense):
    tree, _, run = dense
    assert run.outcomes("9", "10", "11") == dict.fromkeys(("9", "10", "11"), "passed"), run.output[-6000:]
    tiny = run.summary["tiny"]
    assert (tiny["arch"], tiny["weights"]) == ("Ministral3ForCausalLM", "synthesized")
    assert tiny["config_source"]["kind"] == "upstream"
    assert tiny["config_source"]["text"] == f"upstream's transformers: {MISTRAL_CONFIG}.MistralConfig"
    assert 0 < tiny["parameters"] < 10_000_000
    assert run.summary["control"] == {"served": True, "reason": ""}
    entries = text_entries(run.summary)
    assert sorted(entries) == TEXT_PROMPTS
    assert all(entry["passed"] and entry["gt"] == "collected" for entry in entries.values()), entries
    assert run.summary["e2e"]["gt"]["model"] == tiny["path"]
    assert "Ministral3ForCausalLM" in run.summary["server"]["evidence"]["resolved"]
    reply = run.summary["server"]["chat"]
    assert reply["text"].strip(), reply  # step 10 asks for text, a tiny model's too
    assert run.summary["benchmark"]["command"][0] == "POST"  # step 9's load went to step 10's server
    assert not (tree / "reports" / DENSE / "logs" / "benchmark.json").exists()
    print(f"--tiny {DENSE}, steps 9-11: {run.seconds:.0f} s; step 10's reply: {reply['text']!r}")


def test_a_second_run_replays_the_control_and_starts_no_control_server(dense, tmp_path):
    tree, python, first = dense
    reports = tmp_path / "reports"  # no GT results of the first run here: the control cache has them
    run = flmigrate(tree, python, "--tiny", "-k", TINY_STEPS, model=DENSE, port=free_port(), reports=reports)
    assert run.outcomes("9", "10", "11") == dict.fromkeys(("9", "10", "11"), "passed"), run.output[-6000:]
    assert run.summary["control"] == {"served": True, "reason": "", "replayed": True}
    entries = text_entries(run.summary)
    assert all(entry["passed"] and entry["gt"] == "replayed" for entry in entries.values()), entries
    assert not (reports / DENSE / "logs" / "gt-server.log").exists()  # no control server started
    assert run.summary["phases"].get("control") is None and run.summary["e2e"]["seconds"]["gt"] == 0
    for prompt in TEXT_PROMPTS:  # the same tokens as the first run's control gave
        replayed = json.loads((reports / DENSE / "e2e" / "gt" / f"{prompt}.json").read_text())["generation"]
        collected = json.loads((tree / "reports" / DENSE / "e2e" / "gt" / f"{prompt}.json").read_text())
        assert replayed["token_ids"] == collected["generation"]["token_ids"]
    print(f"--tiny {DENSE}, steps 9-11 replaying the control: {run.seconds:.0f} s (first run {first.seconds:.0f} s)")


def test_the_tiny_model_is_cached_and_a_fresh_synthesis_is_byte_identical(dense, upstream_python, tmp_path):
    _, _, run = dense
    cached = Path(run.summary["tiny"]["path"])
    fills = json.loads((cached / STAMP).read_text(encoding="utf-8"))["fills"]  # what the run's source asked
    fresh = checkpoints.synthesize(
        str(upstream_python),
        DENSE,
        run.summary["upstream"]["version"],
        "Ministral3ForCausalLM",
        sources.ConfigSource(
            sources.UPSTREAM,
            run.summary["tiny"]["config_source"]["text"],
            MISTRAL_CONFIG,
            "MistralConfig",
            fills=fills,
        ),
        cache=tmp_path,
    )
    assert fresh.path.name == cached.name  # the same source, the same cache folder
    names = sorted(path.name for path in cached.iterdir())
    assert names == sorted(path.name for path in fresh.path.iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(names)
    for name in names:
        assert (fresh.path / name).read_bytes() == (cached / name).read_bytes(), name


# A weight-loading mapping broken on purpose: the checkpoint's embedding and LM head (same shape,
# untied in the tiny model) swap places before the migrated load_weights maps them.
LOAD_LOOP = "for name, loaded_weight in weights"
SWAPPED_LOOP = "for name, loaded_weight in ((SWAPPED.get(name, name), weight) for name, weight in weights)"
SWAPPED = 'SWAPPED = {"model.embed_tokens.weight": "lm_head.weight", "lm_head.weight": "model.embed_tokens.weight"}\n'


def test_a_broken_weight_mapping_fails_step_11_with_an_early_divergence(
    dense, pinned_python, upstream_python, tmp_path
):
    source, *_ = dense
    tree, python = plugin_tree(tmp_path, pinned_python, source=source)  # with the saved GT results
    model_file = tree / "vllm_fl" / "models" / f"{DENSE}.py"
    text = model_file.read_text()
    assert text.count(LOAD_LOOP) == 1
    model_file.write_text(text.replace(LOAD_LOOP, SWAPPED_LOOP) + "\n\n" + SWAPPED)
    junit = tmp_path / "junit.xml"
    run = flmigrate(
        tree,
        python,
        "-k",
        "e2e",
        tiny_gt=upstream_python,
        model=DENSE,
        port=free_port(),
        junit=junit,
    )

    assert run.outcomes("11") == {"11": "failed"}, run.output[-4000:]
    entries = text_entries(run.summary)
    assert {prompt: (entry["verdict"], entry["divergence"]) for prompt, entry in entries.items()} == dict.fromkeys(
        TEXT_PROMPTS, ("diverged", "early")
    ), entries
    assert {entry["gt"] for entry in entries.values()} == {"reused"}
    first = junit_failure(junit, "test_e2e[t1-").strip().splitlines()[0]
    assert first.endswith(
        "(early divergence: likely a code bug; check weight loading, TP sharding, op implementations)"
    )


# rnj1 migrates, registers and imports in the pin, but upstream vLLM's CPU attention backend cannot
# build its layers (upstream passes chunk_lookback, which CPUAttentionBackendImpl does not take):
# a platform fact found by bench/runtime_coverage.py over the 0.32 batch. The control is tried
# first and the pinned env never serves. The gap wordings of the same skip (a processor, a config
# field or a module --tiny or the env lacks) are unit-tested (tests/unit/test_runtime_coverage_record.py).
UNSERVABLE, UNSERVABLE_ARCH = "rnj1", "Rnj1ForCausalLM"


def test_a_model_upstream_cannot_run_on_cpu_skips_steps_9_to_11_with_the_platform_reason(
    pinned_python, upstream_python, tmp_path
):
    tree, python = plugin_tree(tmp_path, pinned_python)
    run = flmigrate(
        tree,
        python,
        "-k",
        f"step02 or step04 or step05 or {TINY_STEPS}",
        tiny_gt=upstream_python,
        model=UNSERVABLE,
        port=free_port(),
    )
    assert run.outcomes("4", "5") == {"4": "passed", "5": "passed"}, run.output[-4000:]
    assert run.outcomes("9", "10", "11") == dict.fromkeys(("9", "10", "11"), "skipped"), run.output[-4000:]
    reasons = {run.summary["steps"][step]["reason"] for step in ("9", "10", "11")}
    assert len(reasons) == 1, reasons
    reason = reasons.pop().removeprefix("Skipped: ")  # pytest's skip text, as summary.json records every skip
    assert reason == (
        f"upstream vLLM {run.summary['upstream']['version']} cannot run {UNSERVABLE_ARCH} on CPU: TypeError: "
        "CPUAttentionBackendImpl.__init__() got an unexpected keyword argument 'chunk_lookback'"
    ), reason
    assert run.summary["tiny"]["arch"] == UNSERVABLE_ARCH
    control = run.summary["control"]  # its server exited with the error: kept, and replayed by later runs
    assert {key: control[key] for key in ("served", "reason")} == {"served": False, "reason": reason}
    assert run.summary["server"] is None  # the pinned env never served
    assert not list((tree / "reports" / UNSERVABLE / "logs").glob("server-*.log"))
