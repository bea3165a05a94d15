"""A small pinned vLLM and an upstream that moved, changed and added things, indexed from tmp."""

from __future__ import annotations

import textwrap

import pytest

from pytest_flmigrate.autofix.backport import Backporter
from pytest_flmigrate.autofix.relocate import Relocator
from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.records import TreeIndex
from pytest_flmigrate.index.resolve import Resolver
from tests.fixtures.trees import VLLM_CORE, write

ACT = """
    class Act:
        def __call__(self, x):
            return x
        def forward(self, x):
            return x
"""

PINNED = {
    **VLLM_CORE,
    "vllm/model_executor/layers/acts_old.py": ACT,
    "vllm/logger.py": "def init_logger(name):\n    return name\n",
    "vllm/envs.py": """
        import os
        environment_variables = {"VLLM_OLD": lambda: os.getenv("VLLM_OLD")}
        def __getattr__(name):
            if name in environment_variables:
                return environment_variables[name]()
            raise AttributeError(name)
    """,
    "vllm/attention/__init__.py": "",
    "vllm/attention/layer.py": """
        import torch.nn as nn
        class Attention(nn.Module):
            def __init__(self, num_heads, head_size, scale, prefix=""):
                super().__init__()
            def forward(self, q, k, v):
                return q
            def extra_repr(self):
                return ""
            def get_kv_cache_spec(self):
                return None
    """,
    "vllm/attention/backends/__init__.py": "",
    "vllm/attention/backends/abstract.py": """
        class AttentionType:
            DECODER = "decoder"
            ENCODER = "encoder"
        def is_quantized_kv_cache(kv_cache_dtype):
            return kv_cache_dtype != "auto"
    """,
    "vllm/config/__init__.py": "from vllm.config.vllm import VllmConfig\n",
    "vllm/config/cache.py": """
        from dataclasses import dataclass
        @dataclass
        class CacheConfig:
            block_size: int = 16
    """,
    "vllm/config/vllm.py": """
        from dataclasses import dataclass
        from vllm.config.cache import CacheConfig
        @dataclass
        class VllmConfig:
            model_config: object = None
            cache_config: CacheConfig = None
        _current = None
        def set_current(config):
            global _current
            _current = config
    """,
    "vllm/model_executor/layers/activation.py": """
        from vllm.model_executor.custom_op import CustomOp
        @CustomOp.register("silu_and_mul")
        class SiluAndMul(CustomOp):
            pass
    """,
    "vllm/model_executor/models/interfaces_base.py": """
        def default_pooling_type(pooling_type):
            def func(model):
                model.default_pooling_type = pooling_type
                return model
            return func
    """,
    "vllm/model_executor/models/utils.py": """
        from vllm.logger import init_logger
        logger = init_logger(__name__)
        def maybe_prefix(prefix, name):
            return name if not prefix else prefix + "." + name
        def helper_changed(x):
            return x + 1
        class Shape:
            PER_TENSOR = (-1, -1)
    """,
    "vllm/model_executor/models/pixtral.py": """
        import torch.nn as nn
        class Attention(nn.Module):
            def __init__(self, args):
                super().__init__()
            def rope(self):
                return None
            def mask(self):
                return None
    """,
    "vllm/v1/__init__.py": "",
    "vllm/v1/pool/__init__.py": "",
    "vllm/v1/pool/metadata.py": """
        class PoolingMetadata:
            pooling_cursor = None
    """,
    "vllm/model_executor/models/config.py": """
        class VerifyAndUpdateConfig:
            @staticmethod
            def verify_and_update_config(vllm_config):
                raise NotImplementedError

        class OldModelConfig(VerifyAndUpdateConfig):
            @staticmethod
            def verify_and_update_config(vllm_config):
                vllm_config.model_config.hf_config.old = True

        MODELS_CONFIG_MAP = {"OldModel": OldModelConfig}
    """,
    "vllm/utils/__init__.py": "",
    "vllm/utils/platform_utils.py": """
        def is_pin_memory_available():
            return True
    """,
    "vllm/utils/torch_utils.py": """
        def direct_register_custom_op(name):
            return name
    """,
    "vllm/model_executor/layers/pooler_updates.py": """
        class UpdateParams:
            def __init__(self, requires_token_ids=False):
                self.requires_token_ids = requires_token_ids
            def apply(self, params):
                params.requires_token_ids = self.requires_token_ids
    """,
}

UPSTREAM = {
    **VLLM_CORE,
    "vllm/logger.py": "def init_logger(name):\n    return name\n",
    "vllm/envs.py": PINNED["vllm/envs.py"].replace(
        '{"VLLM_OLD": lambda: os.getenv("VLLM_OLD")}',
        '{"VLLM_OLD": lambda: 1, "VLLM_NEW": lambda: bool(int(os.getenv("VLLM_NEW", "0"))), '
        '"VLLM_HELPER": lambda: _parse(os.getenv("VLLM_HELPER"))}',
    ),
    "vllm/config/cache.py": """
        from dataclasses import dataclass
        @dataclass
        class CacheConfig:
            block_size: int = 16
            user_block_size: int | None = None
    """,
    "vllm/model_executor/layers/attention/__init__.py": "from .attention import Attention\n",
    "vllm/model_executor/layers/attention/attention.py": """
        import torch.nn as nn
        class Attention(nn.Module):
            def __init__(self, num_heads, head_size, scale, prefix="", sinks=None):
                super().__init__()
            def forward(self, q, k, v):
                return q
            def extra_repr(self):
                return ""
            def get_kv_cache_spec(self):
                return None
            def new_method(self):
                return 1
        def make_attention(heads):
            return Attention(heads, 64, 1.0)
    """,
    "vllm/model_executor/models/mixedmodel.py": """
        from vllm.model_executor.layers.attention import Attention
        from vllm.model_executor.layers.attention.attention import make_attention
        class MixedModel:
            def __init__(self):
                self.attn = make_attention(2) if Attention else None
    """,
    "vllm/v1/__init__.py": "",
    "vllm/v1/attention/__init__.py": "",
    "vllm/v1/attention/backend.py": """
        class AttentionType:
            DECODER = "decoder"
            ENCODER = "encoder"
            ENCODER_ONLY = "encoder_only"
        def is_quantized_kv_cache(kv_cache_dtype):
            return kv_cache_dtype not in ("auto", "bfloat16")
    """,
    "vllm/config/__init__.py": "from vllm.config.vllm import VllmConfig, get_current_or_none\n",
    "vllm/config/vllm.py": PINNED["vllm/config/vllm.py"].replace(
        "            _current = config\n",
        "            _current = config\n        def get_current_or_none():\n            return _current\n",
    ),
    "vllm/model_executor/models/interfaces_base.py": """
        def default_pooling_type(*, seq_pooling_type="LAST", tok_pooling_type="ALL"):
            def func(model):
                return model
            return func
    """,
    "vllm/model_executor/models/utils.py": textwrap.dedent('''
        # SPDX-License-Identifier: Apache-2.0
        """Utilities."""
        from typing import TYPE_CHECKING

        import torch

        from vllm import envs
        from vllm.logger import init_logger
        from vllm.model_executor.custom_op import CustomOp
        from vllm.v1.attention.backend import AttentionType, is_quantized_kv_cache

        if TYPE_CHECKING:
            from vllm.config import VllmConfig

        logger = init_logger(__name__)

        CONST = 3


        def maybe_prefix(prefix, name):
            return name if not prefix else prefix + "." + name


        def helper_changed(x):
            return x + 2


        def _scale(n):
            return n * CONST


        # the helper the new model imports
        def new_helper(n):
            """Scaled n."""
            logger.info("scaling")
            return _scale(n)


        def typed_helper(config: VllmConfig, kind=None):
            return kind or AttentionType.DECODER


        def encoder_only_kind():
            return AttentionType.ENCODER_ONLY


        def quantized(dtype):
            return is_quantized_kv_cache(dtype)


        def uses_kernel(x):
            return torch.ops.vllm.new_kernel(x)


        def uses_new_flag():
            return envs.VLLM_NEW


        def uses_helper_flag():
            return envs.VLLM_HELPER


        def block_size_of(vllm_config):
            return vllm_config.cache_config.user_block_size or vllm_config.cache_config.block_size


        def uses_old_flag():
            return envs.VLLM_OLD


        @CustomOp.register("new_op")
        class NewOp(CustomOp):
            pass


        @CustomOp.register("silu_and_mul")
        class SiluAgain(CustomOp):
            pass


        def local_import():
            from vllm.model_executor.layers.attention import Attention
            return Attention


        def chain_0(x):
            return chain_1(x)
    ''')
    + "".join(f"\n\ndef chain_{i}(x):\n    return chain_{i + 1}(x)\n" for i in range(1, 40))
    + "\n\ndef chain_40(x):\n    return x\n",
    "vllm/v1/pool/__init__.py": "",
    "vllm/v1/pool/metadata.py": """
        class PoolingMetadata:
            pooling_cursor = None
            def get_pooling_cursor(self):
                return self.pooling_cursor
            def get_chunks(self):
                return []
    """,
    "vllm/model_executor/layers/pooler_methods.py": """
        from vllm.v1.pool.metadata import PoolingMetadata
        def cursor_of(pooling_metadata: PoolingMetadata):
            return pooling_metadata.get_pooling_cursor()
        def cursor_getter(pooling_metadata: PoolingMetadata):
            return pooling_metadata.get_pooling_cursor
        def chunks_of(pooling_metadata: PoolingMetadata):
            return pooling_metadata.get_chunks()
    """,
    "vllm/utils/__init__.py": "",
    "vllm/utils/platform_utils.py": PINNED["vllm/utils/platform_utils.py"],
    "vllm/utils/torch_utils.py": """
        from typing import TYPE_CHECKING
        from vllm.utils.platform_utils import is_pin_memory_available

        if TYPE_CHECKING:
            PIN_MEMORY: bool


        def direct_register_custom_op(name):
            return name


        def __getattr__(name):
            if name == "PIN_MEMORY":
                return is_pin_memory_available()
            raise AttributeError(name)
    """,
    "vllm/utils/lazy_kernels.py": """
        import torch

        def __getattr__(name):
            if name == "KERNEL":
                return torch.ops.vllm.new_kernel
            raise AttributeError(name)
    """,
    "vllm/model_executor/models/config.py": """
        from typing import TYPE_CHECKING

        import torch

        if TYPE_CHECKING:
            from vllm.config import VllmConfig


        class VerifyAndUpdateConfig:
            @staticmethod
            def verify_and_update_config(vllm_config: "VllmConfig") -> None:
                return

            @staticmethod
            def verify_and_update_model_config(model_config) -> None:
                return


        class OldModelConfig(VerifyAndUpdateConfig):
            @staticmethod
            def verify_and_update_config(vllm_config):
                vllm_config.model_config.hf_config.old = False


        def _embedding_size(hf_config):
            return hf_config.num_labels


        class BidirectionalModelConfig(VerifyAndUpdateConfig):
            @staticmethod
            def verify_and_update_model_config(model_config) -> None:
                model_config.hf_config.is_causal = False
                model_config.hf_config.embedding_size = _embedding_size(model_config.hf_config)


        class KernelModelConfig(VerifyAndUpdateConfig):
            @staticmethod
            def verify_and_update_config(vllm_config) -> None:
                torch.ops.vllm.new_kernel(vllm_config)


        MODELS_CONFIG_MAP = {
            "OldModel": OldModelConfig,
            "BidirectionalModel": BidirectionalModelConfig,
            "KernelModel": KernelModelConfig,
        }
    """,
    "vllm/model_executor/layers/pooler_updates.py": """
        class UpdateParams:
            def __init__(self, requires_token_ids=False):
                self.requires_token_ids = requires_token_ids
            def __or__(self, other):
                return UpdateParams(self.requires_token_ids or other.requires_token_ids)
            def apply(self, params):
                params.requires_token_ids = self.requires_token_ids
    """,
    "vllm/model_executor/layers/pool/merge.py": """
        from vllm.model_executor.layers.pooler_updates import UpdateParams
        def merged(*parts):
            updates = UpdateParams()
            for part in parts:
                updates |= part
            return updates
    """,
    "vllm/model_executor/models/mergemodel.py": """
        from vllm.model_executor.layers.pool.merge import merged
        class MergeModel:
            def updates(self, a, b):
                return merged(a, b)
    """,
    "vllm/model_executor/layers/pool/updates.py": """
        class UpdateParams:
            def __init__(self, requires_token_ids=False):
                self.requires_token_ids = requires_token_ids
            def __or__(self, other):
                return UpdateParams(self.requires_token_ids or other.requires_token_ids)
            def __repr__(self):
                return "UpdateParams"
            def apply(self, params):
                params.requires_token_ids = self.requires_token_ids
    """,
    "vllm/model_executor/models/pinnedmodel.py": """
        import torch
        from vllm.utils.torch_utils import PIN_MEMORY
        from vllm.utils.lazy_kernels import KERNEL
        class PinnedModel:
            def buffer(self):
                return torch.empty(4, pin_memory=PIN_MEMORY)
    """,
    "vllm/model_executor/models/othermodel.py": """
        from vllm.model_executor.models.utils import quantized
        from vllm.config.helpers import current_model
        class OtherModel:
            pass
    """,
    "vllm/config/helpers.py": """
        from vllm.config.vllm import get_current_or_none
        def current_model():
            config = get_current_or_none()
            return None if config is None else config.model_config
    """,
    "vllm/model_executor/layers/pool/__init__.py": "",
    "vllm/model_executor/layers/pool/acts.py": ACT
    + """
    def act_for(name):
        return Act()
""",
    "vllm/model_executor/layers/pool/heads.py": """
        from .acts import Act, act_for
        def make_head(name):
            head = act_for(name)
            assert isinstance(head, Act)
            return head
    """,
    "vllm/model_executor/models/poolmodel.py": """
        from vllm.model_executor.layers.pool.heads import make_head
        class PoolModel:
            def __init__(self):
                self.head = make_head("x")
    """,
    "vllm/model_executor/layers/fusion/__init__.py": "",
    "vllm/model_executor/layers/fusion/mm_input_norm.py": """
        import torch
        from torch import nn


        class IdentityInputNorm(nn.Module):
            def forward(self, pixel_values, visual_dtype):
                return pixel_values.to(visual_dtype, copy=False)


        class FusedMMInputNorm(nn.Module):
            def forward(self, pixel_values, visual_dtype):
                return torch.ops.vllm.fused_mm_input_norm(pixel_values, visual_dtype)


        def build_mm_input_norm(model_config):
            mm_config = getattr(model_config, "multimodal_config", None)
            if not getattr(mm_config, "mm_device_do_normalize", False):
                return IdentityInputNorm()
            return FusedMMInputNorm()
    """,
    "vllm/model_executor/models/normmodel.py": """
        from vllm.model_executor.layers.fusion.mm_input_norm import build_mm_input_norm
        class NormModel:
            def __init__(self, vllm_config):
                self.input_norm = build_mm_input_norm(vllm_config.model_config)
    """,
    "vllm/model_executor/models/newmodel.py": """
        from vllm.model_executor.layers.attention import Attention
        from vllm.v1.attention.backend import AttentionType
        from .utils import maybe_prefix, new_helper, helper_changed, uses_kernel
        from .interfaces_base import default_pooling_type

        @default_pooling_type(seq_pooling_type="CLS")
        class NewModel:
            def __init__(self):
                self.attn = Attention(1, 2, 3.0, prefix=maybe_prefix("", "attn"))
                self.kind = AttentionType.DECODER
                self.n = new_helper(2) + helper_changed(1)
    """,
}


@pytest.fixture(scope="session")
def trees(tmp_path_factory) -> tuple[TreeIndex, TreeIndex]:
    """(upstream index, pinned index) of the two small trees."""
    base = tmp_path_factory.mktemp("trees")
    upstream = write(base / "upstream", UPSTREAM)
    pinned = write(base / "pinned", PINNED)
    return index_directory(upstream, "vllm", "0.99.0"), index_directory(pinned, "vllm", "0.13.0")


@pytest.fixture
def relocator(trees) -> Relocator:
    upstream, pinned = trees
    return Relocator(Resolver([upstream]), Resolver([pinned]))


@pytest.fixture
def backporter(trees, relocator) -> Backporter:
    return Backporter(relocator.upstream, relocator.pinned, relocator)


def never(module: str, name: str) -> bool:
    return False


@pytest.fixture
def plugin(tmp_path):
    """A fresh plugin checkout: ``vllm_fl/__init__.py`` and nothing else."""
    root = tmp_path / "plugin"
    (root / "vllm_fl").mkdir(parents=True)
    (root / "vllm_fl" / "__init__.py").write_text("")
    return root
