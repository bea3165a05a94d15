"""--tiny for a model whose config class neither upstream vLLM nor its transformers has, on real vLLM:
``--tiny-from`` a local folder whose remote-code config fails to load is one line, with nothing left
in the tiny cache. (The same folder with a working config, and the inferred config, are unit-tested
in tests/unit/test_tiny_config_sources.py; their steps 9-11 on real servers are not yet proven.)
"""

from __future__ import annotations

import json

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.tiny import checkpoints, sources

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
