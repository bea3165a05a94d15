from textwrap import dedent

import pytest

from pytest_flmigrate.patches import p01_relative_imports as p1
from tests.patches.conftest import patch_context

PLUGIN = {
    "vllm.model_executor.models.qwen3_next": "vllm_fl.models.qwen3_next",
    "vllm.model_executor.models.kimi_k25_vit": "vllm_fl.models.kimi_k25_vit",
    "vllm.model_executor.models.moonvit": "vllm_fl.models.moon_vit",
}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            "from .utils import maybe_prefix\n",
            "from vllm.model_executor.models.utils import maybe_prefix\n",
            id="core-module",
        ),
        pytest.param(
            "from .qwen3_next import Qwen3NextModel as Base\n",
            "from vllm_fl.models.qwen3_next import Qwen3NextModel as Base\n",
            id="plugin-module",
        ),
        pytest.param(
            "from ..layers.linear import ReplicatedLinear\n",
            "from vllm.model_executor.layers.linear import ReplicatedLinear\n",
            id="two-levels",
        ),
        pytest.param(
            "from ... import envs\n",
            "from vllm import envs\n",
            id="three-levels-no-module",
        ),
        pytest.param(
            "from . import kimi_k25_vit\n",
            "from vllm_fl.models import kimi_k25_vit\n",
            id="plugin-submodule",
        ),
        pytest.param(
            "from . import moonvit as vit\n",
            "from vllm_fl.models import moon_vit as vit\n",
            id="renamed-plugin-submodule-keeps-alias",
        ),
        pytest.param(
            "from . import moonvit\n",
            "from vllm_fl.models import moon_vit as moonvit\n",
            id="renamed-plugin-submodule-bound-under-old-name",
        ),
        pytest.param(
            "from . import utils\n",
            "from vllm.model_executor.models import utils\n",
            id="core-submodule",
        ),
        pytest.param(
            "from . import utils, kimi_k25_vit  # both\n",
            "from vllm.model_executor.models import utils  # both\nfrom vllm_fl.models import kimi_k25_vit\n",
            id="split-by-home",
        ),
        pytest.param(
            "from .utils import *\n",
            "from vllm.model_executor.models.utils import *\n",
            id="star",
        ),
        pytest.param(
            """\
            # imports of the model
            from .interfaces import (  # protocols
                MultiModalEmbeddings,
                SupportsMRoPE,  # mrope
            )
            """,
            """\
            # imports of the model
            from vllm.model_executor.models.interfaces import (  # protocols
                MultiModalEmbeddings,
                SupportsMRoPE,  # mrope
            )
            """,
            id="parentheses-and-comments-survive",
        ),
        pytest.param(
            """\
            def load():
                from .utils import AutoWeightsLoader
                return AutoWeightsLoader
            """,
            """\
            def load():
                from vllm.model_executor.models.utils import AutoWeightsLoader
                return AutoWeightsLoader
            """,
            id="inside-function",
        ),
    ],
)
def test_rewrites(rewrite, before, after):
    assert p1.relevant(dedent(before), patch_context())  # a file step 4 visits
    assert rewrite(p1, before, module_map=PLUGIN)[0] == dedent(after)


def test_a_file_without_relative_imports_is_not_visited():
    source = "from vllm.model_executor.models.utils import maybe_prefix  # from the models\nimport torch\n"
    assert not p1.relevant(source, patch_context())


@pytest.mark.parametrize(
    "source",
    [
        "from vllm.model_executor.models.utils import maybe_prefix\n",
        "from __future__ import annotations\n",
        "import torch\n",
        # splitting would put kimi_k25_vit after its use on the same line
        "from . import utils, kimi_k25_vit; kimi_k25_vit.init()\n",
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p1, source, module_map=PLUGIN) == (source, 0)


def test_package_init_resolves_from_itself(rewrite):
    out, count = rewrite(
        p1,
        "from .registry import ModelRegistry\n",
        module_name="vllm.model_executor.models",
        is_package=True,
    )
    assert out == "from vllm.model_executor.models.registry import ModelRegistry\n"
    assert count == 1


def test_counts_one_per_statement(rewrite):
    source = "from .utils import a, b; from .qwen3_next import C\nfrom . import utils, kimi_k25_vit\n"
    assert rewrite(p1, source, module_map=PLUGIN)[1] == 3


def test_upstream_import_block_shape(rewrite):
    # the shape of a hybrid multimodal model's imports (qwen3_5.py-like), written here
    before = """\
        import torch
        from torch import nn

        from vllm.config import VllmConfig

        from .interfaces import (
            HasInnerState,
            IsHybrid,
            SupportsMultiModal,
        )
        from .qwen3_next import (
            Qwen3NextAttention,
            Qwen3NextDecoderLayer,
        )
        from .qwen3_vl import Qwen3_VisionTransformer
        from .utils import (
            AutoWeightsLoader,
            maybe_prefix,
        )
        """
    after = """\
        import torch
        from torch import nn

        from vllm.config import VllmConfig

        from vllm.model_executor.models.interfaces import (
            HasInnerState,
            IsHybrid,
            SupportsMultiModal,
        )
        from vllm_fl.models.qwen3_next import (
            Qwen3NextAttention,
            Qwen3NextDecoderLayer,
        )
        from vllm.model_executor.models.qwen3_vl import Qwen3_VisionTransformer
        from vllm.model_executor.models.utils import (
            AutoWeightsLoader,
            maybe_prefix,
        )
        """
    assert rewrite(p1, before, module_map=PLUGIN) == (dedent(after), 4)
