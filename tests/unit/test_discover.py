"""Step 2's model unit: its config found through the classes the unit imports."""

from __future__ import annotations

from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.sources import SourceTree
from pytest_flmigrate.steps import discover
from pytest_flmigrate.steps.discover import find_unit
from tests.fixtures.synthetic import COMMON, TRANSFORMERS
from tests.fixtures.trees import write


def test_package_unit_config_from_a_relative_import_in_a_checkout_named_vllm(tmp_path):
    root = write(
        tmp_path / "vllm",
        {  # a git clone of vLLM: vllm/vllm/...
            **COMMON,
            **TRANSFORMERS,
            "vllm/models/__init__.py": "",
            "vllm/model_executor/models/registry.py": """
            _TEXT_GENERATION_MODELS = {"KimiForCausalLM": ("vllm.models.kimi", "KimiForCausalLM")}
        """,
            "vllm/transformers_utils/config.py": "_CONFIG_REGISTRY = LazyConfigDict()\n",
            "vllm/models/kimi/__init__.py": "from .configuration_kimi import KimiConfig\nclass KimiForCausalLM: ...\n",
            "vllm/models/kimi/configuration_kimi.py": """
            from transformers.configuration_utils import PretrainedConfig
            class KimiConfig(PretrainedConfig):
                model_type = "kimi"
        """,
        },
    )
    upstream = SourceTree(root, "vllm", "test", "9.1.0")
    unit = find_unit(
        upstream, index_directory(root, "vllm"), index_directory(root, "transformers"), root / "transformers", "kimi"
    )
    assert (unit.config.model_type, unit.config.class_name) == ("kimi", "KimiConfig")
    assert unit.config.module == "vllm.models.kimi.configuration_kimi"


import pytest  # noqa: E402

from pytest_flmigrate.errors import FlmigrateError  # noqa: E402
from pytest_flmigrate.steps.discover import NEWER_TRANSFORMERS, REMOTE_CODE  # noqa: E402

WHISPER = {
    "transformers/models/whisper/__init__.py": "",
    "transformers/models/whisper/configuration_whisper.py": """
        from ...configuration_utils import PretrainedConfig
        class WhisperConfig(PretrainedConfig):
            model_type = "whisper"
    """,
}


def omni_tree(root, model: str, registry: str = "_CONFIG_REGISTRY = {}\n"):
    return write(
        root,
        {
            **COMMON,
            **TRANSFORMERS,
            **WHISPER,
            "vllm/model_executor/models/registry.py": """
            _MULTIMODAL_MODELS = {"OmniForConditionalGeneration": ("omni", "OmniForConditionalGeneration")}
        """,
            "vllm/transformers_utils/config.py": registry,
            "vllm/transformers_utils/configs/omni_v2.py": """
            from transformers.configuration_utils import PretrainedConfig
            class OmniV2Config(PretrainedConfig):
                model_type = "omni_v2"
        """,
            "vllm/model_executor/models/omni.py": model,
        },
    )


def unit_of(root, name="omni", **kwargs):
    upstream = SourceTree(root, "vllm", "test", "9.1.0")
    return find_unit(
        upstream,
        index_directory(root, "vllm"),
        index_directory(root, "transformers"),
        root / "transformers",
        name,
        **kwargs,
    )


AUDIO_TOWER = """
    from transformers.models.whisper.configuration_whisper import WhisperConfig
    class OmniAudioEncoder:
        def __init__(self, config: WhisperConfig): ...
"""


def test_top_level_config_is_what_the_architecture_receives_not_the_closest_sub_config(tmp_path):
    root = omni_tree(
        tmp_path,
        AUDIO_TOWER
        + """
    from vllm.transformers_utils.configs.omni_v2 import OmniV2Config
    class OmniProcessingInfo:
        def get_hf_config(self):
            return self.ctx.get_hf_config(OmniV2Config)
    class OmniForConditionalGeneration: ...
    """,
    )
    unit = unit_of(root)
    assert (unit.config.model_type, unit.config.class_name, unit.config.origin) == ("omni_v2", "OmniV2Config", "vllm")
    assert "OmniForConditionalGeneration receives: OmniV2Config" in unit.evidence["model_type"]


def test_unit_whose_only_config_import_is_a_sub_config_reads_its_config_from_the_checkpoint(tmp_path):
    unit = unit_of(omni_tree(tmp_path, AUDIO_TOWER + "class OmniForConditionalGeneration: ...\n"))
    assert unit.config is None and unit.config_from_checkpoint
    placeholders = unit.placeholders()
    assert placeholders["model_type"] == placeholders["ConfigClassName"] == REMOTE_CODE


def test_architecture_receiving_two_configs_fails_listing_both(tmp_path):
    root = omni_tree(
        tmp_path,
        AUDIO_TOWER
        + """
    from vllm.transformers_utils.configs.omni_v2 import OmniV2Config
    class OmniForConditionalGeneration:
        config_class = OmniV2Config
        def __init__(self, vllm_config):
            config = vllm_config.model_config.hf_config
            assert isinstance(config, WhisperConfig)
    """,
    )
    with pytest.raises(FlmigrateError) as failure:
        unit_of(root)
    assert (
        "the config of OmniForConditionalGeneration is ambiguous: OmniV2Config (omni_v2), WhisperConfig (whisper)"
        in str(failure.value)
    )


def test_config_only_a_newer_transformers_defines_comes_from_there(tmp_path):
    root = omni_tree(
        tmp_path / "upstream",
        """
    from typing import TYPE_CHECKING
    if TYPE_CHECKING:
        from transformers.models.omni import OmniConfig
    class OmniForConditionalGeneration: ...
    """,
    )
    newer = write(
        tmp_path / "newer",
        {
            **TRANSFORMERS,
            "transformers/models/auto/configuration_auto.py": "CONFIG_MAPPING_NAMES = {'omni': 'OmniConfig'}\n",
            "transformers/models/omni/__init__.py": "from .configuration_omni import OmniConfig\n",
            "transformers/models/omni/configuration_omni.py": """
            from ...configuration_utils import PreTrainedConfig
            class OmniConfig(PreTrainedConfig):
                model_type = "omni"
        """,
        },
    )
    asked = []

    def newer_transformers():
        asked.append(True)
        return SourceTree(newer, "transformers", "test", "5.0.0"), index_directory(newer, "transformers")

    unit = unit_of(root, newer_transformers=newer_transformers)
    assert (unit.config.model_type, unit.config.origin) == ("omni", NEWER_TRANSFORMERS)
    assert unit.config.module == "transformers.models.omni.configuration_omni"
    assert asked  # asked for only because upstream's own sources lack the config
    asked.clear()
    unit_of(
        omni_tree(
            tmp_path / "other",
            AUDIO_TOWER
            + """
    from vllm.transformers_utils.configs.omni_v2 import OmniV2Config
    class OmniForConditionalGeneration:
        config_class = OmniV2Config
    """,
        ),
        newer_transformers=newer_transformers,
    )
    assert not asked


PASSED_ON = """
    from transformers.models.whisper.configuration_whisper import WhisperConfig
    class OmniDecoderLayer:
        def __init__(self, config: WhisperConfig, cache_config=None): ...
    class OmniForConditionalGeneration:
        def __init__(self, vllm_config):
            config = vllm_config.model_config.hf_config
            self.layers = [OmniDecoderLayer({passed}) for _ in range(2)]
"""


def test_config_class_the_unit_hands_hf_config_to_is_the_top_level_config(tmp_path):
    """rnj1: ``config = ...hf_config`` passed to a layer taking ``config: Gemma3TextConfig``."""
    for passed in ("config", "config=config"):
        unit = unit_of(omni_tree(tmp_path / passed, PASSED_ON.format(passed=passed)))
        assert (unit.config.model_type, unit.config.class_name) == ("whisper", "WhisperConfig"), passed
        assert "OmniForConditionalGeneration receives: WhisperConfig" in unit.evidence["model_type"]


def test_sub_config_handed_on_is_not_the_top_level_config(tmp_path):
    """minicpmo: ``MiniCPMWhisperEncoder(config.audio_config)`` takes a sub-config."""
    unit = unit_of(omni_tree(tmp_path, PASSED_ON.format(passed="config.audio_config")))
    assert unit.config is None and unit.config_from_checkpoint


def test_new_models_are_the_files_and_packages_upstream_has_and_the_pin_lacks(tmp_path):
    upstream, pinned = tmp_path / "upstream", tmp_path / "pinned"
    write(
        upstream,
        {
            "model_executor/models/__init__.py": "",
            "model_executor/models/llama.py": "",
            "model_executor/models/newcomer.py": "",
            "models/__init__.py": "",
            "models/deepseek_v32/__init__.py": "",
            "models/deepseek_v32/nvidia/model.py": "",
            "models/moved/__init__.py": "",
            "models/notes/readme.txt": "",
        },
    )
    write(pinned, {"model_executor/models/llama.py": "", "model_executor/models/moved.py": ""})

    assert discover.new_model_files(upstream, pinned) == ["newcomer"]
    assert discover.new_model_packages(upstream, pinned) == ["deepseek_v32"]
    assert discover.new_model_packages(pinned, pinned) == []


TYPE_CHECKING_STUB = """
    from typing import TYPE_CHECKING
    from transformers.configuration_utils import PretrainedConfig
    if TYPE_CHECKING:
        class OmniConfig(PretrainedConfig):
            model_type = "omni"
            hidden_size: int
    class OmniForConditionalGeneration:
        def __init__(self, *, vllm_config, prefix=""):
            self.config: OmniConfig = vllm_config.model_config.hf_config
"""


def test_config_defined_only_for_type_checkers_is_the_checkpoints_own(tmp_path):
    """A config class upstream defines only under TYPE_CHECKING is a type stub: the checkpoint's code
    (trust_remote_code) provides it at run time, and step 2 says so."""
    unit = unit_of(omni_tree(tmp_path, TYPE_CHECKING_STUB))
    assert (unit.config.model_type, unit.config.class_name) == ("omni", "OmniConfig")
    assert unit.config.defined == discover.TYPE_CHECKING_ONLY and unit.config_from_checkpoint
    assert unit.config_source() == {
        "kind": "TYPE_CHECKING only",
        "class": "OmniConfig",
        "module": "vllm.model_executor.models.omni",
        "model_type": "omni",
    }


def test_config_defined_in_model_code_is_classified_as_the_model_modules(tmp_path):
    unit = unit_of(omni_tree(tmp_path, TYPE_CHECKING_STUB.replace("if TYPE_CHECKING:\n", "if True:\n")))
    assert unit.config.defined == discover.MODEL_MODULE and not unit.config_from_checkpoint
    assert unit.config_source()["kind"] == "model module"


def test_config_sources_of_upstream_vllm_transformers_and_the_checkpoint(tmp_path):
    vllm_config = """
    from vllm.transformers_utils.configs.omni_v2 import OmniV2Config
    class OmniForConditionalGeneration:
        config_class = OmniV2Config
    """
    assert unit_of(omni_tree(tmp_path / "a", vllm_config)).config_source() == {
        "kind": "vllm",
        "class": "OmniV2Config",
        "module": "vllm.transformers_utils.configs.omni_v2",
        "model_type": "omni_v2",
    }
    whisper = AUDIO_TOWER + "    class OmniForConditionalGeneration:\n        config_class = WhisperConfig\n"
    assert unit_of(omni_tree(tmp_path / "b", whisper)).config_source()["kind"] == "transformers"
    remote = unit_of(omni_tree(tmp_path / "c", AUDIO_TOWER + "    class OmniForConditionalGeneration: ...\n"))
    assert remote.config_source() == {"kind": "checkpoint", "class": None, "module": None, "model_type": None}


def test_a_config_registered_under_aliases_takes_the_model_type_it_declares(tmp_path):
    """unlimited_ocr: vLLM registers UnlimitedOCRConfig as "unlimited-ocr" and "unlimited_ocr"; the
    class declares "unlimited-ocr", which the bridge then sets."""
    root = write(
        tmp_path,
        {
            **COMMON,
            **TRANSFORMERS,
            "vllm/model_executor/models/registry.py": """
            _MULTIMODAL_MODELS = {"OcrForCausalLM": ("ocr_v1", "OcrForCausalLM")}
        """,
            "vllm/transformers_utils/config.py": (
                '_CONFIG_REGISTRY = LazyConfigDict(**{"ocr-v1": "OcrConfig"}, ocr_v1="OcrConfig")\n'
            ),
            "vllm/transformers_utils/configs/ocr_v1.py": """
            from transformers.configuration_utils import PretrainedConfig
            class OcrConfig(PretrainedConfig):
                model_type = "ocr-v1"
        """,
            "vllm/model_executor/models/ocr_v1.py": "class OcrForCausalLM: ...\n",
        },
    )
    unit = unit_of(root, "ocr_v1")
    assert (unit.config.model_type, unit.config.class_name) == ("ocr-v1", "OcrConfig")


def test_a_unit_pools_only_when_every_registry_entry_of_it_is_a_pooling_models():
    """``Qwen2ForCausalLM`` is listed for text generation and, converted on request, as an
    embedding model: it is served as a generating model."""
    from pytest_flmigrate.index.registries import Architecture
    from pytest_flmigrate.steps.discover import pooling_task

    generate = Architecture("Qwen2ForCausalLM", "qwen2", "Qwen2ForCausalLM", "_TEXT_GENERATION_MODELS")
    embed = Architecture("Qwen2ForCausalLM", "qwen2", "Qwen2ForCausalLM", "_EMBEDDING_MODELS")
    tokens = Architecture(
        "BertForTokenClassification", "bert", "BertForTokenClassification", "_TOKEN_CLASSIFICATION_MODELS"
    )
    assert pooling_task([generate, embed]) is None
    assert pooling_task([embed]) == "embed"
    assert pooling_task([tokens, embed]) == "token_classify"
    assert pooling_task([]) is None
