"""Step 2's config on real trees: upstream vLLM 0.15.0 from PyPI (transformers 4.57.6 beside it)."""

from __future__ import annotations

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
