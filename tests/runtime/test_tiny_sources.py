"""--tiny for models whose config class neither upstream vLLM nor its transformers has, on real vLLM.

- ``iquest_loopcoder`` with ``--tiny-from`` a local folder this test writes: a small remote-code
  config class (``configuration_loopcoder.py``) and its ``config.json`` naming it in ``auto_map``,
  as a hub checkpoint of a remote-code model holds them (the hub path is the same code with a
  download in front; its failures are unit-tested in tests/unit/test_tiny_config_sources.py);
- the same model with nothing at all: the config inferred from what upstream's
  iquest_loopcoder.py reads (its base: ``LlamaConfig``, as its layers subclass llama's).

Transformers has no class for the architecture, so the weights are upstream vLLM's own model's,
saved under the checkpoint names its ``load_weights`` accepts (tiny/vllm_weights.py). Each run
migrates the model (steps 2-6) and runs steps 9-11 with ``--tiny``. Then: the inferred run's tree
with its weight loading broken on purpose fails step 11 (the new weight source still catches a
wrong migration), and a config folder whose code fails to load is one line with nothing in the
tiny cache. (step1, the other text model with no config class, cannot be the inferred case:
upstream vLLM's CPU attention does not take its ALiBi, a platform fact.)
"""

from __future__ import annotations

import json

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers.ports import free_port
from pytest_flmigrate.tiny import checkpoints, sources
from tests.runtime.suite_run import flmigrate, plugin_tree

STEPS = "step02 or step04 or step05 or step06 or step09 or step10 or e2e"
TEXT_PROMPTS = ["t1", "t2", "t3", "t4", "t5"]

LOOPCODER_CONFIG = """
from transformers import PretrainedConfig


class LoopCoderConfig(PretrainedConfig):
    model_type = "iquest_loopcoder"

    def __init__(
        self,
        vocab_size=76800,
        hidden_size=5120,
        intermediate_size=27648,
        num_hidden_layers=80,
        num_attention_heads=40,
        num_key_value_heads=8,
        hidden_act="silu",
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        rope_parameters=None,
        loop_num=2,
        loop_window_size=64,
        tie_word_embeddings=False,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.rms_norm_eps = rms_norm_eps
        self.rope_parameters = rope_parameters or {"rope_type": "default", "rope_theta": 500000.0}
        self.loop_num = loop_num
        self.loop_window_size = loop_window_size
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
"""


def checkpoint_folder(root, code: str = LOOPCODER_CONFIG):
    folder = root / "IQuest-Coder-checkpoint"
    folder.mkdir()
    (folder / "configuration_loopcoder.py").write_text(code)
    config = {
        "architectures": ["IQuestLoopCoderForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_loopcoder.LoopCoderConfig"},
        "model_type": "iquest_loopcoder",
        "num_hidden_layers": 80,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def assert_steps_9_to_11_pass(run, kind: str) -> dict:
    assert run.outcomes("9", "10", "11") == dict.fromkeys(("9", "10", "11"), "passed"), run.output[-6000:]
    tiny = run.summary["tiny"]
    assert tiny["config_source"]["kind"] == kind, tiny
    assert (
        tiny["weights"] == "synthesized"
        and "(upstream vLLM, checkpoint names of its load_weights)" in tiny["weights_from"]
    ), tiny
    entries = {p: e for p, e in run.summary["e2e"]["prompts"].items() if e["kind"] == "text"}
    assert sorted(entries) == TEXT_PROMPTS and all(e["passed"] for e in entries.values()), entries
    return tiny


def test_a_remote_code_config_from_a_local_folder_passes_steps_9_to_11(pinned_python, upstream_python, tmp_path):
    folder = checkpoint_folder(tmp_path)
    tree, python = plugin_tree(tmp_path, pinned_python)
    run = flmigrate(
        tree,
        python,
        "--tiny",
        "--tiny-from",
        str(folder),
        "--gt-python",
        str(upstream_python),
        "-k",
        STEPS,
        model=MODEL,
        port=free_port(),
    )
    tiny = assert_steps_9_to_11_pass(run, sources.TINY_FROM)
    assert tiny["config_source"]["text"] == f"--tiny-from {folder} (its config.json and code)"
    config = json.loads((checkpoints.Path(tiny["path"]) / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_loopcoder.LoopCoderConfig"}
    assert (config["num_hidden_layers"], config["hidden_size"], config["rope_parameters"]["rope_theta"]) == (
        2,
        128,
        500000.0,
    )
    print(f"--tiny-from iquest_loopcoder, steps 2-11: {run.seconds:.0f} s")


MODEL = "iquest_loopcoder"


@pytest.fixture(scope="module")
def inferred(pinned_python, upstream_python, tmp_path_factory):
    tree, python = plugin_tree(tmp_path_factory.mktemp("tiny-inferred"), pinned_python)
    run = flmigrate(
        tree, python, "--tiny", "--gt-python", str(upstream_python), "-k", STEPS, model=MODEL, port=free_port()
    )
    return tree, run


def test_an_inferred_config_passes_steps_9_to_11_and_says_it_was_inferred(inferred):
    tree, run = inferred
    tiny = assert_steps_9_to_11_pass(run, sources.INFERRED)
    assert tiny["config_source"]["text"].startswith(f"inferred from upstream vLLM's vllm.model_executor.models.{MODEL}")
    assert tiny["config_source"]["text"].endswith("base LlamaConfig (llama's))")
    report = (tree / "reports" / MODEL / "report.md").read_text()
    assert "(inferred: a guess from the model's code, not a real checkpoint's config)" in report
    print(f"--tiny {MODEL} (inferred config), steps 2-11: {run.seconds:.0f} s")


# A weight mapping broken on purpose in the model's own loading loop: the MLPs' gate and up
# projections (same shape) trade places, so every weight still loads and the tokens diverge.
LOAD_LOOP = "for name, loaded_weight in weights:"
SWAPPED_LOOP = "for name, loaded_weight in ((SWAPPED(name), weight) for name, weight in weights):"
SWAPPED = (
    "def SWAPPED(name):\n"
    '    return name.replace(".mlp.gate_proj.", ".@.").replace(".mlp.up_proj.", ".mlp.gate_proj.").replace(".@.", ".mlp.up_proj.")\n'
)


def test_a_broken_weight_mapping_fails_step_11_on_vllm_synthesized_weights(
    inferred, pinned_python, upstream_python, tmp_path
):
    source, _ = inferred
    tree, python = plugin_tree(tmp_path, pinned_python, source=source)  # with the saved GT results
    model_file = tree / "vllm_fl" / "models" / f"{MODEL}.py"
    text = model_file.read_text()
    assert text.count(LOAD_LOOP) == 1, text
    model_file.write_text(text.replace(LOAD_LOOP, SWAPPED_LOOP) + "\n\n" + SWAPPED)
    run = flmigrate(
        tree, python, "--tiny", "--gt-python", str(upstream_python), "-k", "e2e", model=MODEL, port=free_port()
    )
    assert run.outcomes("11") == {"11": "failed"}, run.output[-4000:]
    entries = {p: e for p, e in run.summary["e2e"]["prompts"].items() if e["kind"] == "text"}
    assert {e["verdict"] for e in entries.values()} == {"diverged"}, entries


def test_a_config_whose_code_fails_to_load_is_one_line_and_leaves_nothing(upstream_python, tmp_path):
    folder = checkpoint_folder(tmp_path, code="raise ImportError('needs flash_attn')\n")
    source = sources.ConfigSource(sources.TINY_FROM, f"--tiny-from {folder}", folder=folder)
    with pytest.raises(FlmigrateError) as caught:
        checkpoints.synthesize(
            str(upstream_python), "x", "0.32.0", "IQuestLoopCoderForCausalLM", source, cache=tmp_path / "cache"
        )
    assert caught.value.message == (
        f"--tiny: cannot synthesize a tiny IQuestLoopCoderForCausalLM: the config of --tiny-from {folder} fails to "
        "load in the upstream env: ImportError: needs flash_attn"
    )
    assert [p.name for p in (tmp_path / "cache" / "tiny").iterdir() if not p.name.endswith(".lock")] == []
