"""--tiny for speculative-decoding drafts: recognition, the speculative config, /metrics, the pin's one line."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_flmigrate.index.registries import model_registry
from pytest_flmigrate.steps.discover import ModelUnit
from pytest_flmigrate.steps.patterns import decide_pattern
from pytest_flmigrate.tiny import checkpoints, drafts
from tests.fixtures.trees import write

#: Entries of upstream vLLM 0.32.0's registry (model_executor/models/registry.py), as data.
REGISTRY = """
_TEXT_GENERATION_MODELS = {
    "Qwen3ForCausalLM": ("qwen3", "Qwen3ForCausalLM"),
}
_MULTIMODAL_MODELS = {
    "Eagle2_5_VLForConditionalGeneration": ("eagle2_5_vl", "Eagle2_5_VLForConditionalGeneration"),
}
_SPECULATIVE_DECODING_MODELS = {
    "EagleCohereForCausalLM": ("cohere_eagle", "EagleCohereForCausalLM"),
    "EagleMistralForCausalLM": ("mistral_eagle", "EagleMistralForCausalLM"),
    "DFlashDraftModel": ("qwen3_dflash", "DFlashQwen3ForCausalLM"),
    "DFlashLagunaForCausalLM": ("laguna_dflash", "DFlashLagunaForCausalLM"),
    "LiLiCorrDraftModel": ("lilicorr", "LiLiCorrForCausalLM"),
    "PeagleLlamaForCausalLM": ("llama_eagle3", "Eagle3LlamaForCausalLM"),
    "Eagle3LlamaForCausalLM": ("llama_eagle3", "Eagle3LlamaForCausalLM"),
    "Eagle3Qwen3ForCausalLM": ("qwen3_eagle3", "Eagle3Qwen3ForCausalLM"),
    "Eagle3DeepseekV3ForCausalLM": ("deepseek_eagle3", "Eagle3DeepseekV2ForCausalLM"),
    "DeepSeekMTPModel": ("deepseek_mtp", "DeepSeekMTP"),
    "Qwen3NextMTP": ("qwen3_next_mtp", "Qwen3NextMTP"),
}
"""


def registry(tmp_path: Path):
    root = write(tmp_path / "vllm", {"model_executor/models/registry.py": REGISTRY})
    return {arch.name: arch for arch in model_registry(root)}


def test_drafts_are_recognised_by_upstream_speculative_table_and_class(tmp_path):
    archs = registry(tmp_path)
    methods = {name: drafts.draft_method(arch) for name, arch in archs.items()}
    assert methods == {
        "Qwen3ForCausalLM": None,
        "Eagle2_5_VLForConditionalGeneration": None,  # a VLM named Eagle, not a draft
        "EagleCohereForCausalLM": "eagle",
        "EagleMistralForCausalLM": "eagle",
        "DFlashDraftModel": "dflash",  # the class names the method where the architecture does not
        "DFlashLagunaForCausalLM": "dflash",
        "LiLiCorrDraftModel": "dflash",  # vLLM's EAGLE config keeps it as a DFlash draft's architecture
        "PeagleLlamaForCausalLM": "eagle3",
        "Eagle3LlamaForCausalLM": "eagle3",
        "Eagle3Qwen3ForCausalLM": "eagle3",
        "Eagle3DeepseekV3ForCausalLM": "eagle3",
        "DeepSeekMTPModel": None,  # MTP heads are not drafts here
        "Qwen3NextMTP": None,
    }
    found = drafts.find_draft([archs["Qwen3ForCausalLM"], archs["Eagle3Qwen3ForCausalLM"]])
    assert found is not None and (found[0].name, found[1]) == ("Eagle3Qwen3ForCausalLM", "eagle3")
    assert drafts.find_draft([archs["Qwen3ForCausalLM"], archs["DeepSeekMTPModel"]]) is None
    # of a unit's aliases, the architecture named as its class
    found = drafts.find_draft([archs["PeagleLlamaForCausalLM"], archs["Eagle3LlamaForCausalLM"]])
    assert found is not None and found[0].name == "Eagle3LlamaForCausalLM"


def test_step3_says_a_draft_is_judged_with_a_tiny_target(tmp_path):
    archs = registry(tmp_path)
    root = write(tmp_path / "up", {"vllm/model_executor/models/qwen3_eagle3.py": "from .qwen3 import Qwen3Model\n"})
    unit = ModelUnit(
        "qwen3_eagle3",
        "vllm.model_executor.models.qwen3_eagle3",
        False,
        ("vllm/model_executor/models/qwen3_eagle3.py",),
        (archs["Eagle3Qwen3ForCausalLM"],),
        "Qwen3 EAGLE-3",
        None,
    )
    evidence = decide_pattern(unit, root, tmp_path / "no-plugin").evidence
    assert evidence[-1] == (
        "Eagle3Qwen3ForCausalLM is a speculative-decoding draft (eagle3, in upstream's "
        "_SPECULATIVE_DECODING_MODELS): --tiny judges it with a tiny target"
    )


def test_both_servers_speculate_with_the_draft(tmp_path):
    pair = checkpoints.TinyModel(
        tmp_path, "Eagle3Qwen3ForCausalLM", True, "", 10, draft={"method": "eagle3", "path": "draft", "target": "Q"}
    )
    flag, value = pair.serve_args
    assert flag == "--speculative-config"
    assert json.loads(value) == {
        "method": "eagle3",
        "model": str(tmp_path / "draft"),
        "num_speculative_tokens": drafts.NUM_SPECULATIVE_TOKENS,
    }
    assert pair.as_dict()["draft"]["path"] == str(tmp_path / "draft")
    plain = checkpoints.TinyModel(tmp_path, "Qwen3ForCausalLM", True, "", 10)
    assert plain.serve_args == () and "draft" not in plain.as_dict()


def test_a_stamp_with_a_draft_loads_as_a_pair(tmp_path):
    stamp = {
        "arch": "EagleCohereForCausalLM",
        "weights": "synthesized",
        "reason": "",
        "parameters": 5,
        "config_kind": "upstream",
        "config_source": "transformers CohereConfig",
        "weights_from": "x",
        "remote_code": [],
        "draft": {"method": "eagle", "path": "draft", "target": "Qwen2ForCausalLM"},
    }
    (tmp_path / "flmigrate-tiny.json").write_text(json.dumps(stamp), encoding="utf-8")
    found = checkpoints.load(tmp_path)
    assert found is not None and found.draft_dir == tmp_path / "draft"


#: A vLLM 0.32.0 /metrics excerpt of a server with two speculative tokens (prometheus_client's text).
METRICS = """\
# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.
# TYPE vllm:spec_decode_num_drafts_total counter
vllm:spec_decode_num_drafts_total{engine="0",model_name="/t"} 12.0
vllm:spec_decode_num_drafts_created{engine="0",model_name="/t"} 1.76e+09
vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="/t"} 24.0
vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="/t"} 9.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="/t",position="0"} 7.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="/t",position="1"} 2.0
vllm:generation_tokens_total{engine="0",model_name="/t"} 64.0
"""


def test_an_eagle3_draft_reads_the_layers_its_two_layer_target_has():
    from pytest_flmigrate.tiny import qwen2_checkpoint, synthesize

    layers = synthesize.PAIR_FIELDS["eagle3"]["eagle_aux_hidden_state_layer_ids"]
    assert layers == [0, 1, 2] and max(layers) == qwen2_checkpoint.NUM_LAYERS


def test_acceptance_counts_are_read_from_metrics():
    assert drafts.parse_metrics(METRICS) == {
        "drafts": 12,
        "draft_tokens": 24,
        "accepted_tokens": 9,
        "accepted_per_position": [7, 2],
        "acceptance_rate": 0.375,
    }
    assert drafts.parse_metrics("vllm:generation_tokens_total 3.0\n# no speculative decoding\n") == {}
    lines = drafts.report_lines({"method": "eagle", "target": "Qwen2ForCausalLM"}, drafts.parse_metrics(METRICS))
    assert lines == [
        "- Draft: eagle with the tiny target Qwen2ForCausalLM; accepted 9 of 24 draft tokens in 12 drafts (rate 0.375)"
    ]


def test_a_pin_without_speculative_decoding_on_cpu_is_one_line():
    # vLLM 0.13.0's v1/worker/cpu_model_runner.py: assert self.speculative_config is None, "spec decode is not supported."
    log = (
        "INFO starting\n"
        '(EngineCore_DP0 pid=1)     assert self.speculative_config is None, "spec decode is not supported."\n'
        "(EngineCore_DP0 pid=1) AssertionError: spec decode is not supported.\n"
        "RuntimeError: Engine core initialization failed.\n"
    )
    line = drafts.pin_fact(log, "0.13.0", "eagle3", "Eagle3Qwen3ForCausalLM")
    assert line == (
        "vLLM 0.13.0's CPU model runner does not support speculative decoding: the draft Eagle3Qwen3ForCausalLM "
        "is not judged at this pin ((EngineCore_DP0 pid=1) AssertionError: spec decode is not supported.)"
    )
    assert "\n" not in line
    coloured = "\x1b[0;36m(EngineCore_DP0 pid=1)\x1b[0;0m AssertionError: spec decode is not supported.\n"
    assert drafts.pin_fact(coloured, "0.13.0", "eagle3", "Eagle3Qwen3ForCausalLM") == line


def test_a_pin_whose_cpu_rejection_sampler_cannot_start_is_one_line():
    # vLLM 0.24.0: rejection_sampler.py passes USE_FP64_GUMBEL to utils/cpu_triton_utils.py's stand-in
    log = (
        "(Worker pid=1)     sample_recovered_tokens_kernel[(batch_size, max_spec_len)](\n"
        "(Worker pid=1) TypeError: _sample_recovered_tokens_kernel_impl() got an unexpected keyword argument "
        "'USE_FP64_GUMBEL'\n"
    )
    line = drafts.pin_fact(log, "0.24.0", "eagle3", "Eagle3LlamaForCausalLM")
    assert line is not None and line.startswith(
        "vLLM 0.24.0's CPU speculative decoding cannot start (its CPU rejection-sampling kernel lacks an argument "
        "its sampler passes): the draft Eagle3LlamaForCausalLM is not judged at this pin ((Worker pid=1) TypeError: "
    )


def test_a_method_the_pin_lacks_is_one_line_and_a_migration_error_is_not_a_skip():
    log = "pydantic_core._pydantic_core.ValidationError: 1 validation error for SpeculativeConfig\nmethod\n  Input should be 'ngram', 'medusa', 'mlp_speculator', 'draft_model', 'suffix', 'eagle', 'eagle3', 'deepseek_mtp', 'mimo_mtp', 'glm4_moe_mtp', 'ernie_mtp', 'qwen3_next_mtp', 'longcat_flash_mtp', 'mtp' or 'pangu_ultra_moe_mtp' [type=literal_error, input_value='dflash']\n"
    line = drafts.pin_fact(log, "0.13.0", "dflash", "DFlashDraftModel")
    assert line is not None and line.startswith("vLLM 0.13.0 has no speculative decoding method dflash: ")
    broken = "TypeError: Eagle3Qwen3ForCausalLM.__init__() got an unexpected keyword argument 'prefix'\n"
    assert drafts.pin_fact(broken, "0.13.0", "eagle3", "Eagle3Qwen3ForCausalLM") is None


def test_a_drafts_decoder_tensors_are_also_tried_at_the_top_level():
    from pytest_flmigrate.tiny import vllm_weights

    own = {"model.layers.0.fc.weight": 1, "model.norm.weight": 2, "lm_head.weight": 3}
    assert vllm_weights.top_level(own) == {"layers.0.fc.weight": 1, "norm.weight": 2, "lm_head.weight": 3}
    assert vllm_weights.top_level({"lm_head.weight": 3}) == {}  # nothing under model.
    assert vllm_weights.top_level({"model.norm.weight": 1, "norm.weight": 2}) == {}  # they would clash
