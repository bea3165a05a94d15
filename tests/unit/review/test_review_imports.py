"""relative-imports, unresolved-imports, transformers-names: positive and negative cases."""

from __future__ import annotations

from tests.unit.review.conftest import symbols_of

MODEL = "vllm_fl/models/newmodel.py"


def test_relative_import_left(review_files):
    findings = review_files({MODEL: "from .utils import maybe_prefix\n"}, "relative-imports")
    assert symbols_of(findings) == [("relative-imports", ".utils")]
    assert findings[0].fix == "P1" and findings[0].line == 1
    assert findings[0].format().startswith(f"{MODEL}:1: [relative-imports] .utils: ")


def test_absolute_imports_pass(review_files):
    assert (
        review_files({MODEL: "from vllm.model_executor.models.utils import maybe_prefix\n"}, "relative-imports") == []
    )


def test_unresolved_names_say_what_the_pin_has(review_files):
    source = (
        "from vllm.model_executor.layers.attention import Attention\n"
        "from vllm.model_executor.models.utils import maybe_prefixx, maybe_prefix\n"
        "from vllm.model_executor.models.utils import is_vit_use_data_parallel\n"
        "from vllm_fl.models.nowhere import Thing\n"
        "import vllm.no.such.module\n"
    )
    findings = {f.symbol: f for f in review_files({MODEL: source}, "unresolved-imports")}
    assert set(findings) == {
        "vllm.model_executor.layers.attention.Attention",
        "vllm.model_executor.models.utils.maybe_prefixx",
        "vllm.model_executor.models.utils.is_vit_use_data_parallel",
        "vllm_fl.models.nowhere.Thing",
        "vllm.no.such.module",
    }
    moved = findings["vllm.model_executor.layers.attention.Attention"]
    assert "the pin defines class Attention in vllm.attention.layer" in moved.message
    assert moved.fix.startswith("manual: import Attention from vllm.attention.layer")
    assert "nearest names there: maybe_prefix" in findings["vllm.model_executor.models.utils.maybe_prefixx"].message
    assert "exists nowhere in the pin" in findings["vllm.model_executor.models.utils.is_vit_use_data_parallel"].message
    assert findings["vllm.model_executor.models.utils.maybe_prefixx"].line == 2


def test_resolved_imports_plugin_siblings_and_compiled_modules_pass(review_files):
    files = {
        "vllm_fl/models/sibling.py": "class Helper:\n    pass\n",
        MODEL: (
            "import torch\n"
            "from vllm.attention.layer import Attention\n"
            "from vllm.config import VllmConfig\n"
            "from vllm_fl.models.sibling import Helper\n"
            "from vllm._C import ops\n"  # compiled on other platforms: exempt
            "import vllm.model_executor.models.utils\n"
        ),
    }
    assert review_files(files, "unresolved-imports") == []


def test_known_missing_names_are_left_to_their_check(review_files):
    source = "from vllm.model_executor.layers.mamba.mamba_utils import MambaStateCopyFunc\n"
    assert review_files({MODEL: source}, "unresolved-imports") == []


def test_transformers_names_missing_in_the_pinned_transformers(review_files):
    source = (
        "import transformers\nfrom transformers import PreTrainedConfig, Qwen9Config\nx = transformers.RopeParameters\n"
    )
    findings = {f.symbol: f for f in review_files({MODEL: source}, "transformers-names")}
    assert set(findings) == {"transformers.PreTrainedConfig", "transformers.Qwen9Config", "transformers.RopeParameters"}
    assert findings["transformers.PreTrainedConfig"].fix == "P14"
    assert "it spells it PretrainedConfig" in findings["transformers.PreTrainedConfig"].message
    assert "transformers 4.57.6 has no Qwen9Config" in findings["transformers.Qwen9Config"].message
    assert findings["transformers.Qwen9Config"].fix.startswith("manual:")
    assert findings["transformers.RopeParameters"].line == 3


def test_transformers_names_the_bridge_provides_point_at_p2(review_files):
    files = {
        "vllm_fl/configs/newmodel.py": "from transformers import PretrainedConfig\nclass NewConfig(PretrainedConfig):\n    pass\n",
        MODEL: "from transformers import NewConfig\n",
    }
    findings = [f for f in review_files(files, "transformers-names") if f.file == MODEL]
    assert [f.fix for f in findings] == ["P2"]


def test_transformers_names_present_pass(review_files):
    source = "import transformers\nfrom transformers import PretrainedConfig\nx = transformers.PretrainedConfig\n"
    assert review_files({MODEL: source}, "transformers-names") == []


def test_table_driven_fixes_are_named_only_when_claimed(review_files):
    source = "from vllm.model_executor.layers.attention import Attention\nfrom vllm.model_executor.models.utils import new_helper\n"
    catalog = {"relocate-imports": "P15", "backport-helpers": "P16"}
    unclaimed = review_files({MODEL: source}, "unresolved-imports", catalog=catalog)
    assert [f.fix.split(":")[0] for f in unclaimed] == ["manual", "manual"]
    seen = []

    def claims(kind, module, name):
        seen.append((kind, module, name))
        return (kind, name) in {("relocate", "Attention"), ("backport", "new_helper")}

    claimed = review_files({MODEL: source}, "unresolved-imports", catalog=catalog, claims=claims)
    assert [f.fix for f in claimed] == ["P15", "P16"]
    assert seen == [
        ("relocate", "vllm.model_executor.layers.attention", "Attention"),
        ("backport", "vllm.model_executor.models.utils", "new_helper"),
    ]


def test_an_api_translation_that_refuses_the_file_says_why(review_files):
    source = (
        "from vllm.model_executor.layers.fused_moe import FusedMoEFactory\n"
        "experts = FusedMoEFactory(8, 4, 16, 32, runner_cls=R)\n"
    )
    (finding,) = review_files({MODEL: source}, "unresolved-imports")
    assert finding.symbol == "vllm.model_executor.layers.fused_moe.FusedMoEFactory"
    assert "P19 leaves it: line 2: FusedMoEFactory(8, 4, 16, 32, runner_cls=R): runner_cls= has no" in finding.message
    assert finding.fix.startswith("manual: port the use by hand (P19 leaves it")


def test_the_refusal_named_is_that_of_the_translation_the_pins_catalog_has(review_files):
    source = (
        "from vllm.model_executor.layers.fused_moe import FusedMoEFactory\n"
        "experts = FusedMoEFactory(8, 4, 16, 32, fuse_shared_experts=True)\n"
    )
    # a pin whose FusedMoE is the factory function: P19's shim does not apply there, P32's does
    (finding,) = review_files({MODEL: source}, "unresolved-imports", catalog={"fused-moe-factory": None})
    assert (
        "P32 leaves it: line 2: FusedMoEFactory(8, 4, 16, 32, fuse_shared_experts=True): "
        "fuse_shared_experts=True has no spelling on the pin's FusedMoE (it takes False)" in finding.message
    )
