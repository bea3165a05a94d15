"""Small pinned / upstream trees and a helper that reviews migrated files written into a plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.patches import CATALOG
from pytest_flmigrate.review import MigratedFile, ReviewContext, review
from tests.fixtures.trees import VLLM_CORE, write

PINNED = {
    **VLLM_CORE,
    "vllm/config/__init__.py": """
        from vllm.config.cache import CacheConfig
        from vllm.config.model import ModelConfig
        from vllm.config.vllm import VllmConfig
    """,
    "vllm/config/cache.py": """
        from dataclasses import dataclass
        @dataclass
        class CacheConfig:
            block_size: int = 16
            enable_prefix_caching: bool = False
            mamba_cache_dtype: str = "auto"
    """,
    "vllm/config/model.py": """
        from dataclasses import dataclass
        @dataclass
        class ModelConfig:
            dtype: str = "auto"
            max_model_len: int = 0
    """,
    "vllm/config/vllm.py": """
        from dataclasses import dataclass, field
        from vllm.config.cache import CacheConfig
        from vllm.config.model import ModelConfig
        @dataclass
        class VllmConfig:
            cache_config: CacheConfig = field(default_factory=CacheConfig)
            model_config: ModelConfig | None = None
    """,
    "vllm/attention/__init__.py": "",
    "vllm/attention/layer.py": """
        import torch.nn as nn
        class Attention(nn.Module):
            def __init__(self, num_heads, head_size, scale, num_kv_heads=None, prefix=""):
                super().__init__()
    """,
    "vllm/model_executor/layers/linear.py": """
        import torch.nn as nn
        class ColumnParallelLinear(nn.Module):
            def __init__(self, input_size, output_size, bias=True, quant_config=None, prefix=""):
                super().__init__()
        class MergedColumnParallelLinear(ColumnParallelLinear):
            def __init__(self, input_size, output_sizes, bias=True, quant_config=None, prefix=""):
                super().__init__(input_size, sum(output_sizes), bias, quant_config, prefix)
    """,
    "vllm/model_executor/layers/fla_op.py": """
        from vllm.model_executor.custom_op import CustomOp
        @CustomOp.register("chunk_gated_delta_rule")
        class ChunkGatedDeltaRuleOp(CustomOp):
            pass
    """,
    "vllm/model_executor/layers/mamba/__init__.py": "",
    "vllm/model_executor/layers/mamba/mamba_utils.py": """
        class MambaStateDtypeCalculator:
            @classmethod
            def gated_delta_net_state_dtype(cls, model_dtype, mamba_cache_dtype):
                return model_dtype
    """,
    "vllm/model_executor/models/utils.py": """
        from dataclasses import dataclass, field
        @dataclass
        class WeightsMapper:
            orig_to_new_substr: dict = field(default_factory=dict)
            orig_to_new_prefix: dict = field(default_factory=dict)
        def maybe_prefix(prefix, name):
            return f"{prefix}.{name}"
    """,
    "vllm/transformers_utils/__init__.py": "",
    "vllm/transformers_utils/config.py": """
        _CONFIG_REGISTRY = {}
        def patch_rope_parameters(config):
            pass
    """,
    "vllm/__init__.py": "from vllm.model_executor.models.registry import ModelRegistry\n",
    "vllm/model_executor/models/registry.py": "class ModelRegistry:\n    pass\n",
    "vllm/model_executor/models/interfaces.py": """
        from typing import Protocol
        class SupportsPP(Protocol):
            supports_pp = True
        class SupportsMultiModal(Protocol):
            def _embed_text_input_ids(self, input_ids, embed_input_ids, *, is_multimodal, handle_oov_mm_token):
                ...
    """,
    "vllm/model_executor/models/base_gdn.py": """
        import torch.nn as nn
        from vllm.model_executor.layers.linear import ColumnParallelLinear
        from vllm.model_executor.layers.fla_op import ChunkGatedDeltaRuleOp
        class BaseGatedDeltaNet(nn.Module):
            def __init__(self, hidden, key_dim, value_dim):
                super().__init__()
                self.key_dim = key_dim
                self.value_dim = value_dim
                self.in_proj_qkvz = ColumnParallelLinear(hidden, self.key_dim * 2 + self.value_dim * 2)
                self.chunk_gated_delta_rule = ChunkGatedDeltaRuleOp()
                self.tp_size = 1
            def _forward_core(self, x):
                return self.chunk_gated_delta_rule(x) * self.tp_size
            def forward(self, x):
                return self._forward_core(self.in_proj_qkvz(x))
        class BaseModel(nn.Module):
            def __init__(self, *, vllm_config, prefix=""):
                super().__init__()
                self.layers = []
            def load_weights(self, weights):
                return set()
    """,
    "transformers/__init__.py": """
        from transformers.configuration_utils import PretrainedConfig
    """,
    "transformers/configuration_utils.py": """
        class PretrainedConfig:
            model_type = ""
            def __init__(self, **kwargs):
                self.tie_word_embeddings = kwargs.pop("tie_word_embeddings", True)
                self.vocab_size = kwargs.pop("vocab_size", None)
            def to_dict(self):
                return dict(self.__dict__)
    """,
}

PINNED["vllm/model_executor/models/config.py"] = """
    class VerifyAndUpdateConfig:
        @staticmethod
        def verify_and_update_config(vllm_config):
            raise NotImplementedError

    class OldModelConfig(VerifyAndUpdateConfig):
        @staticmethod
        def verify_and_update_config(vllm_config):
            vllm_config.cache_config.block_size = 16

    MODELS_CONFIG_MAP = {"OldForCausalLM": OldModelConfig}
"""

# Upstream moved on: Attention lives elsewhere, WeightsMapper grew, the GDN base grew a mapper,
# new architectures have config hooks.
UPSTREAM = {
    **PINNED,
    "vllm/model_executor/models/config.py": """
        class VerifyAndUpdateConfig:
            @staticmethod
            def verify_and_update_config(vllm_config):
                return
            @staticmethod
            def verify_and_update_model_config(model_config):
                return

        class OldModelConfig(VerifyAndUpdateConfig):
            @staticmethod
            def verify_and_update_config(vllm_config):
                vllm_config.cache_config.block_size = 32

        class NewModelConfig(VerifyAndUpdateConfig):
            @staticmethod
            def verify_and_update_model_config(model_config):
                model_config.hf_config.is_causal = False
                model_config.hf_config.embedding_size = model_config.hf_config.num_labels

        MODELS_CONFIG_MAP = {"OldForCausalLM": OldModelConfig, "NewForCausalLM": NewModelConfig}
    """,
    "vllm/model_executor/models/utils.py": """
        from dataclasses import dataclass, field
        @dataclass
        class WeightsMapper:
            orig_to_new_regex: dict = field(default_factory=dict)
            orig_to_new_substr: dict = field(default_factory=dict)
            orig_to_new_prefix: dict = field(default_factory=dict)
        def maybe_prefix(prefix, name):
            return f"{prefix}.{name}"
    """,
    "vllm/model_executor/models/base_gdn.py": PINNED["vllm/model_executor/models/base_gdn.py"].replace(
        "        class BaseModel(nn.Module):\n",
        "        class BaseModel(nn.Module):\n            hf_to_vllm_mapper = None\n",
    ),
    "vllm/config/cache.py": PINNED["vllm/config/cache.py"].replace(
        '            mamba_cache_dtype: str = "auto"\n',
        '            mamba_cache_dtype: str = "auto"\n            mamba_block_size: int = 0\n',
    ),
}


@pytest.fixture(scope="session")
def pinned_indexes(tmp_path_factory):
    root = write(tmp_path_factory.mktemp("pinned"), PINNED)
    return [index_directory(root, "vllm", "0.13.0"), index_directory(root, "transformers", "4.57.6")]


@pytest.fixture(scope="session")
def upstream_indexes(tmp_path_factory):
    root = write(tmp_path_factory.mktemp("upstream"), UPSTREAM)
    return [index_directory(root, "vllm", "0.33.0"), index_directory(root, "transformers", "5.20.2")]


PLUGIN_INIT = """
def register():
    return None


def register_model():
    from vllm import ModelRegistry  # noqa: F401
"""


@pytest.fixture
def review_files(tmp_path, pinned_indexes, upstream_indexes):
    """Write files into a fresh plugin and review them with one check (or all).

    ``files``: plugin path -> source; a path under vllm_fl/configs/ is a config file, one under
    vllm_fl/models/ a model file. Returns the findings.
    """

    def run(files: dict[str, str], check: str | None = None, *, upstream: bool = True, **context):
        plugin = write(
            tmp_path / "plugin",
            {
                "vllm_fl/__init__.py": PLUGIN_INIT,
                "vllm_fl/models/__init__.py": "",
                "vllm_fl/configs/__init__.py": "",
                **files,
            },
        )
        migrated = [
            MigratedFile.at(
                path, "config" if "/configs/" in path else "model", "vllm.model_executor.models." + Path(path).stem
            )
            for path in files
            if path.startswith(("vllm_fl/models/", "vllm_fl/configs/")) and not path.endswith("__init__.py")
        ]
        context.setdefault("catalog", {})
        context["catalog"] = {**{p.name: p.id for p in CATALOG}, **context["catalog"]}
        ctx = ReviewContext(
            plugin_dir=plugin,
            pinned_indexes=pinned_indexes,
            files=migrated,
            upstream_indexes=upstream_indexes if upstream else [],
            **context,
        )
        return review(ctx, [check] if check else None)

    return run


def symbols_of(findings) -> list[tuple[str, str]]:
    return [(f.check, f.symbol) for f in findings]
