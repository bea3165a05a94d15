import re
from textwrap import dedent

import pytest
from packaging.version import Version

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import CATALOG, select_patches
from pytest_flmigrate.patches.base import PatchTransformer, apply_patches
from tests.fixtures.trees import write
from tests.patches.conftest import PIN, patch_context

IDS = (
    "P1", "P2", "P3", "P4", "P9", "P10", "P14", "P15", "P16", "P17", "P18", "P19", "P20", "P21", "P22", "P23", "P24",
    "P25", "P26", "P27", "P28", "P29", "P30", "P31", "P32", "P33", "P34", "P35",
)  # fmt: skip
KEYED = ["P18", "P19", "P20", "P21", "P26", "P28", "P30", "P32", "P33", "P35"]
"""The API translations: keyed by comparing the trees, not by a version range."""


def test_catalog_in_id_order():
    assert tuple(patch.id for patch in CATALOG) == IDS
    numbers = [int(patch.id[1:]) for patch in CATALOG]
    assert numbers == sorted(set(numbers))


@pytest.mark.parametrize("patch", CATALOG, ids=lambda patch: patch.id)
def test_entry_shape(patch):
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", patch.name)
    module = f"pytest_flmigrate.patches.p{int(patch.id[1:]):02d}_{patch.name.replace('-', '_')}"
    assert patch.transformer.__module__ == module
    assert issubclass(patch.transformer, PatchTransformer)


@pytest.mark.parametrize("patch", CATALOG, ids=lambda patch: patch.id)
def test_docstring_has_summary_what_why_when(patch):
    first, blank, *rest = patch.doc.strip().splitlines()
    assert first.startswith(f"{patch.id}: ") and blank == ""
    assert patch.summary == first
    paragraphs = [line for line in rest if re.match(r"(What|Why|When): ", line)]
    assert [line.split(":")[0] for line in paragraphs] == ["What", "Why", "When"]


def test_select_none_is_every_patch_of_the_pin():
    assert select_patches(None, PIN) == CATALOG


def test_select_none_skips_patches_of_other_pins():
    # only the version-independent patches apply to a pin without the 0.13 gaps (the relocation,
    # backport, forwarded-default and import-time member tables are computed from the trees, for any pin; P14 and P22
    # ask the transformers the pin runs with, in relevant(); the API translations apply where the
    # pinned tree lacks their API)
    selected = [patch.id for patch in select_patches(None, Version("0.20.0"))]
    assert selected == sorted(
        ["P1", "P2", "P14", "P15", "P16", "P22", "P23", "P25", "P31", "P34", *KEYED], key=lambda i: int(i[1:])
    )
    assert [patch.id for patch in CATALOG if patch.pin_gap is not None] == KEYED


def test_a_pinned_tree_having_the_apis_selects_no_translation(tmp_path):
    # a pin whose tree has every translated API (a GateLinear taking upstream's arguments, a
    # WeightsMapper taking orig_to_new_stacked)
    moe = "vllm/model_executor/layers/fused_moe"
    files = {
        "vllm/__init__.py": "",
        "vllm/model_executor/__init__.py": "",
        "vllm/model_executor/layers/__init__.py": "",
        f"{moe}/__init__.py": (
            "class FusedMoEFactory: ...\nclass MoERunner: ...\n"
            "class GateLinear:\n    def __init__(self, input_size, output_size, bias=False, out_dtype=None,"
            " params_dtype=None, force_fp32_compute=False, skip_bias_add=False, quant_config=None, prefix='',"
            " return_bias=True): ...\n"
            "def fused_moe_make_expert_params_mapping(): ...\n"
        ),
        f"{moe}/utils.py": "def resolve_layer_fused_shared_expert(): ...\ndef is_model_fused_shared_expert_compatible(): ...\n",
        "vllm/model_executor/layers/activation.py": "class SwigluStepAndMul: ...\nclass SiluAndMulWithClamp: ...\n",
        "vllm/model_executor/layers/attention/__init__.py": (
            "from .mm_encoder_attention import MMEncoderAttention\nclass PrefillPrefixLMAttention: ...\n"
        ),
        "vllm/model_executor/layers/attention/mm_encoder_attention.py": "class MMEncoderAttention: ...\n",
        "vllm/model_executor/models/__init__.py": "",
        "vllm/model_executor/models/utils.py": (
            "class WeightsMapper:\n    def __init__(self, orig_to_new_stacked=None): ...\n"
        ),
        "vllm/model_executor/models/config.py": (
            "class VerifyAndUpdateConfig:\n    def verify_and_update_model_config(model_config): ...\n"
        ),
    }
    write(tmp_path, files)
    pinned = Resolver([index_directory(tmp_path, "vllm")])
    assert not set(KEYED) & {patch.id for patch in select_patches(None, PIN, pinned)}
    assert {patch.id: patch.gap_at(pinned) for patch in CATALOG if patch.id in ("P19", "P21")} == {
        "P19": "the pin has vllm.model_executor.layers.fused_moe.FusedMoEFactory, "
        "vllm.model_executor.layers.fused_moe.MoERunner, "
        "vllm.model_executor.layers.fused_moe.utils.resolve_layer_fused_shared_expert, "
        "vllm.model_executor.layers.fused_moe.utils.is_model_fused_shared_expert_compatible",
        "P21": "the pin's WeightsMapper takes orig_to_new_stacked",
    }


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ("P1,P2", ["P1", "P2"]),
        (" p10 , P1 ", ["P1", "P10"]),
        ("P14,p14", ["P14"]),
    ],
)
def test_select_subset_in_catalog_order(ids, expected):
    assert [patch.id for patch in select_patches(ids, PIN)] == expected


def test_select_subset_drops_patches_not_for_the_pin():
    assert [patch.id for patch in select_patches("P1,P4", Version("0.20.0"))] == ["P1"]


def test_unknown_id_names_it_and_lists_the_known_ones():
    with pytest.raises(FlmigrateError) as caught:
        select_patches("P1, P99, bogus", PIN)
    message = caught.value.message
    assert "\n" not in message
    assert "BOGUS, P99" in message
    assert "P1, P2, P3, P4, P9, P10, P14, P15, P16, P17" in message


@pytest.mark.parametrize("ids", ["", " , ", ","])
def test_an_empty_list_is_refused(ids):
    # an empty selection would write files with no patch at all (relative imports left)
    with pytest.raises(FlmigrateError, match=r"^--patches .*: no patch id given; name catalog ids"):
        select_patches(ids, PIN)


EVERY_PATCH = dedent(
    """\
    from transformers import PreTrainedConfig, Qwen3_5Config
    from vllm.model_executor.layers.mamba.mamba_utils import (
        MambaStateCopyFunc,
        MambaStateDtypeCalculator,
    )

    from .qwen3_next import Qwen3NextModel
    from .utils import maybe_prefix


    class Model(nn.Module):
        def __init__(self, *, vllm_config, prefix=""):
            multimodal_config = vllm_config.model_config.get_multimodal_config()
            with self._mark_tower_model(vllm_config, {"image", "video"}):
                self.visual = Vision(prefix=maybe_prefix(prefix, "visual"))
            with self._mark_language_model(vllm_config):
                self.language_model = Qwen3NextModel(vllm_config=vllm_config)
            if vllm_config.cache_config.mamba_cache_mode != "none":
                self.cached = True

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

CONTEXT = patch_context(
    module_map={"vllm.model_executor.models.qwen3_next": "vllm_fl.models.qwen3_next"},
    name_map={("transformers", "Qwen3_5Config"): "vllm_fl.configs.qwen3_5"},
)


def test_catalog_applies_every_patch_once():
    _, counts = apply_patches(EVERY_PATCH, CATALOG, CONTEXT)
    assert counts == {"P1": 2, "P2": 1, "P3": 2, "P4": 2, "P9": 1, "P10": 1, "P14": 1}


def test_catalog_is_idempotent():
    once, _ = apply_patches(EVERY_PATCH, CATALOG, CONTEXT)
    twice, counts = apply_patches(once, CATALOG, CONTEXT)
    assert (twice, counts) == (once, {})
    compile(once, "patched.py", "exec")
