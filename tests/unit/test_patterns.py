"""Step 3: the pattern and the nearest plugin model, each with its evidence."""

from __future__ import annotations

from pathlib import Path

from pytest_flmigrate.index.registries import Architecture
from pytest_flmigrate.steps.discover import ModelUnit
from pytest_flmigrate.steps.patterns import decide_pattern
from tests.fixtures.trees import write


def unit(name: str, table: str = "_TEXT_GENERATION_MODELS") -> ModelUnit:
    return ModelUnit(
        name=name,
        module=f"vllm.model_executor.models.{name}",
        is_package=False,
        files=(f"vllm/model_executor/models/{name}.py",),
        architectures=(Architecture(f"{name.title()}ForCausalLM", name, f"{name.title()}ForCausalLM", table),),
        display_name=name,
        config=None,
    )


def upstream(tmp_path: Path, name: str, body: str) -> Path:
    return write(tmp_path / "up", {f"vllm/model_executor/models/{name}.py": body})


def test_small_file_building_on_another_model_is_a_wrapper(tmp_path):
    root = upstream(
        tmp_path,
        "kimi",
        "from .deepseek_v2 import DeepseekV2ForCausalLM\n\nclass KimiForCausalLM(DeepseekV2ForCausalLM):\n    pass\n",
    )
    plugin = write(tmp_path / "plugin", {"vllm_fl/models/deepseek_v2.py": "X = 1\n"})
    decision = decide_pattern(unit("kimi"), root, plugin)
    assert decision.pattern == "wrapper"
    assert decision.nearest == "deepseek_v2"
    assert decision.evidence[-1] == "imports deepseek_v2, which the plugin already adapts"


def test_mamba_layers_make_a_hybrid(tmp_path):
    root = upstream(tmp_path, "nexty", "from vllm.model_executor.layers.mamba.mamba_utils import X\n" + "y = 1\n" * 400)
    assert decide_pattern(unit("nexty"), root, tmp_path / "none").pattern == "hybrid"


def test_multimodal_registry_table_wins(tmp_path):
    root = upstream(tmp_path, "visio", "from .qwen3_vl import Qwen3VL\n")
    decision = decide_pattern(unit("visio", "_MULTIMODAL_MODELS"), root, tmp_path / "none")
    assert decision.pattern == "multimodal"
    assert decision.evidence == (
        "registered in upstream's _MULTIMODAL_MODELS",
        "the plugin has no model files to compare with",
    )


def test_nearest_model_by_shared_imports_and_batch_output_ignored(tmp_path):
    root = upstream(tmp_path, "big", "from .qwen2 import A\nfrom .llama import B\n" + "z = 1\n" * 400)
    plugin = write(
        tmp_path / "plugin",
        {
            "vllm_fl/models/other.py": "from vllm.model_executor.models.qwen2 import A\nfrom vllm.model_executor.models.llama import B\n",
            "vllm_fl/models/unrelated.py": "from vllm.model_executor.models.gemma import G\n",
        },
    )
    decision = decide_pattern(unit("big"), root, plugin)
    assert decision.pattern == "full" and decision.nearest == "other"
    assert decision.evidence[-1] == "shares imports of llama, qwen2 with the plugin's other"
    assert decide_pattern(unit("big"), root, plugin, excluded={"other"}).nearest is None
