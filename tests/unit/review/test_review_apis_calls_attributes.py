"""known-missing-apis, call-signatures, missing-attributes: positive and negative cases."""

from __future__ import annotations

import textwrap

from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.patches import CATALOG
from pytest_flmigrate.review import MigratedFile, ReviewContext, review
from tests.fixtures.trees import write
from tests.unit.review.conftest import PINNED, symbols_of

MODEL = "vllm_fl/models/newmodel.py"

HYBRID = textwrap.dedent(
    """
    import torch.nn as nn
    from vllm.model_executor.layers.mamba.mamba_utils import (
        MambaStateCopyFunc,
        MambaStateCopyFuncCalculator,
        MambaStateDtypeCalculator,
    )

    class NewForCausalLM(nn.Module):
        def __init__(self, vllm_config):
            super().__init__()
            with self._mark_tower_model(vllm_config, {"image"}):
                self.visual = None
            if vllm_config.cache_config.mamba_cache_mode == "align":
                pass

        @classmethod
        def get_mamba_state_dtype_from_config(cls, vllm_config):
            return MambaStateDtypeCalculator.gated_delta_net_state_dtype(
                vllm_config.model_config.dtype,
                vllm_config.cache_config.mamba_cache_dtype,
                vllm_config.cache_config.mamba_ssm_cache_dtype,
            )

        @classmethod
        def get_mamba_state_copy_func(cls) -> tuple[MambaStateCopyFunc, MambaStateCopyFunc]:
            return MambaStateCopyFuncCalculator.gated_delta_net_state_copy_func()
    """
)


def test_known_missing_apis_found_with_their_patches(review_files):
    findings = review_files({MODEL: HYBRID}, "known-missing-apis")
    by_symbol = {}
    for finding in findings:
        by_symbol.setdefault(finding.symbol, []).append(finding)
    assert set(by_symbol) == {
        "MambaStateCopyFunc",
        "MambaStateCopyFuncCalculator",
        "_mark_tower_model",
        "mamba_cache_mode",
        "gated_delta_net_state_dtype",
        "get_mamba_state_copy_func",
    }
    assert {f.fix for f in by_symbol["MambaStateCopyFunc"]} == {"P3"}
    assert by_symbol["_mark_tower_model"][0].fix == "P4"
    assert by_symbol["mamba_cache_mode"][0].fix == "P10"
    gdn = by_symbol["gated_delta_net_state_dtype"][0]
    assert gdn.fix == "P9"
    assert "takes 2 positional argument(s) but 3 given" in gdn.message
    assert "(model_dtype, mamba_cache_dtype)" in gdn.message


def test_two_argument_gdn_call_and_plain_code_pass(review_files):
    source = textwrap.dedent(
        """
        from vllm.model_executor.layers.mamba.mamba_utils import MambaStateDtypeCalculator
        def f(vllm_config):
            if vllm_config.cache_config.enable_prefix_caching:
                return MambaStateDtypeCalculator.gated_delta_net_state_dtype("a", "b")
        """
    )
    assert review_files({MODEL: source}, "known-missing-apis") == []


def test_known_missing_apis_the_pin_has_are_not_reported(tmp_path):
    tree = {
        **PINNED,
        "vllm/model_executor/models/interfaces.py": PINNED["vllm/model_executor/models/interfaces.py"]
        + "\n        class SupportsMultiModalV2(Protocol):\n            def _mark_tower_model(self, config, kinds): ...\n",
    }
    root = write(tmp_path / "pin", tree)
    plugin = write(
        tmp_path / "plugin", {MODEL: "def f(self, c):\n    with self._mark_tower_model(c, set()):\n        pass\n"}
    )
    ctx = ReviewContext(
        plugin,
        [index_directory(root, "vllm", "0.13.0")],
        [MigratedFile.at(MODEL, "model")],
        catalog={p.name: p.id for p in CATALOG},
    )
    assert review(ctx, ["known-missing-apis"]) == []


CALLS = textwrap.dedent(
    """
    import torch.nn as nn
    from vllm.attention.layer import Attention
    from vllm.model_executor.models.utils import WeightsMapper, maybe_prefix
    from vllm.model_executor.models.interfaces import SupportsMultiModal
    from vllm.model_executor.layers.linear import ColumnParallelLinear

    mapper = WeightsMapper(orig_to_new_regex={"a": "b"})
    ok_mapper = WeightsMapper(orig_to_new_prefix={"a": "b"})

    class MyAttention(Attention):
        def __init__(self, config):
            super().__init__(8, 64, 0.1, num_kv_heads=8, prefix="", use_sinks=True)

    class MyModel(nn.Module, SupportsMultiModal):
        def __init__(self, hidden):
            super().__init__()
            self.attn = Attention(8, 64, 0.1, 8, "prefix", "extra")
            self.proj = ColumnParallelLinear(hidden, hidden, bias=False, prefix=maybe_prefix("a", "b"))
            self.own(1, 2, 3)

        def own(self, a, b, c):
            return a

        def embed(self, ids, embed):
            return self._embed_text_input_ids(ids, embed, is_multimodal=None)

        def embed_ok(self, ids, embed, **kw):
            return self._embed_text_input_ids(ids, embed, **kw)
    """
)


def test_call_signatures_against_pinned_callees(review_files):
    findings = review_files({MODEL: CALLS}, "call-signatures")
    by_label = {f.symbol: f for f in findings}
    assert set(by_label) == {"WeightsMapper", "super().__init__", "Attention", "self._embed_text_input_ids"}
    mapper = by_label["WeightsMapper"]
    assert "unexpected keyword argument 'orig_to_new_regex'" in mapper.message
    assert "pinned vllm.model_executor.models.utils.WeightsMapper.__init__(orig_to_new_substr=" in mapper.message
    assert "upstream (orig_to_new_regex=" in mapper.message
    assert mapper.line == 7 and mapper.fix.startswith("manual: adapt the call")
    assert "unexpected keyword argument 'use_sinks'" in by_label["super().__init__"].message
    assert "takes 5 positional argument(s) but 6 given" in by_label["Attention"].message
    assert "missing required argument(s) 'handle_oov_mm_token'" in by_label["self._embed_text_input_ids"].message


def test_why_step_4_left_a_drifting_call_is_in_its_finding_for_classes_and_functions(review_files):
    source = textwrap.dedent(
        """
        from vllm.model_executor.models.utils import WeightsMapper, maybe_prefix

        mapper = WeightsMapper(orig_to_new_regex={"a": "b"})
        name = maybe_prefix("a", "b", sep="/")
        """
    )
    utils = "vllm.model_executor.models.utils"
    unfixed = {(f"{utils}.WeightsMapper", "__init__"): "class why", (utils, "maybe_prefix"): "function why"}
    messages = {f.line: f.message for f in review_files({MODEL: source}, "call-signatures", unfixed=unfixed)}
    assert messages[3].endswith("; not fixed at step 4: class why")
    assert messages[4].endswith("; not fixed at step 4: function why")


def test_a_stacked_weights_mapper_names_p21_and_only_alone(review_files):
    source = textwrap.dedent(
        """
        from vllm.model_executor.models.utils import WeightsMapper

        stacked = WeightsMapper(orig_to_new_stacked={".q_proj": (".qkv_proj", "q")})
        both = WeightsMapper(orig_to_new_stacked={}, orig_to_new_regex={"a": "b"})
        """
    )
    fixes = {f.line: f.fix for f in review_files({MODEL: source}, "call-signatures")}
    assert fixes[3] == "P21"
    assert fixes[4].startswith("manual: adapt the call")  # the port has no orig_to_new_regex


def test_calls_that_fit_pass(review_files):
    source = textwrap.dedent(
        """
        from vllm.attention.layer import Attention
        from vllm.model_executor.models.utils import WeightsMapper
        from vllm.model_executor.layers.mamba.mamba_utils import MambaStateDtypeCalculator
        WeightsMapper(orig_to_new_substr={})
        Attention(8, 64, 0.1, num_kv_heads=8)
        MambaStateDtypeCalculator.gated_delta_net_state_dtype("a", mamba_cache_dtype="b")
        def helper(a):
            return a
        helper(1)
        def g(**kw):
            return Attention(**kw)
        """
    )
    assert review_files({MODEL: source}, "call-signatures") == []


ATTRIBUTES = textwrap.dedent(
    """
    import vllm.model_executor.models.utils as model_utils
    from vllm.model_executor.models.base_gdn import BaseModel

    class NewModel(BaseModel):
        def __init__(self, *, vllm_config, prefix=""):
            super().__init__(vllm_config=vllm_config, prefix=prefix)
            self.own = 1
            self.block = vllm_config.cache_config.mamba_block_size
            self.size = vllm_config.cache_config.block_size

        def forward(self, x):
            mapper = self.hf_to_vllm_mapper
            return self.own, self.layers, self.training, self.load_weights, model_utils.no_such_helper
    """
)


def test_missing_attributes_of_pinned_bases_modules_and_configs(review_files):
    findings = {f.symbol: f for f in review_files({MODEL: ATTRIBUTES}, "missing-attributes")}
    assert set(findings) == {
        "self.hf_to_vllm_mapper",
        "CacheConfig.mamba_block_size",
        "vllm.model_executor.models.utils.no_such_helper",
    }
    assert "upstream BaseModel provides it (attribute)" in findings["self.hf_to_vllm_mapper"].message
    assert "MRO NewModel -> BaseModel -> Module" in findings["self.hf_to_vllm_mapper"].message
    assert "upstream CacheConfig provides it" in findings["CacheConfig.mamba_block_size"].message


def test_missing_attributes_need_upstream_to_have_had_them(review_files):
    source = ATTRIBUTES.replace("self.hf_to_vllm_mapper", "self.never_anywhere").replace(
        "mamba_block_size", "block_size"
    )
    assert symbols_of(review_files({MODEL: source}, "missing-attributes")) == [
        ("missing-attributes", "vllm.model_executor.models.utils.no_such_helper")
    ]
    # without upstream trees the pinned side alone decides
    findings = review_files({MODEL: source}, "missing-attributes", upstream=False)
    assert ("missing-attributes", "self.never_anywhere") in symbols_of(findings)
