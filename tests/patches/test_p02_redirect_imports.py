from textwrap import dedent

import pytest

from pytest_flmigrate.patches import p02_redirect_imports as p2

MODULES = {
    "vllm.transformers_utils.configs.step3p5": "vllm_fl.configs.step3p5",
    "vllm.model_executor.models.kimi_k25_vit": "vllm_fl.models.kimi_k25_vit",
    "flash_linear_attention": "vllm_fl.ops.fla",
}
NAMES = {
    ("transformers", "Qwen3_5Config"): "vllm_fl.configs.qwen3_5",
    ("transformers", "Qwen3_5TextConfig"): "vllm_fl.configs.qwen3_5",
    ("vllm.transformers_utils.configs", "Step3p5Config"): "vllm_fl.configs.step3p5",
    ("transformers", "Qwen3_5MoeConfig"): "vllm_fl.configs.qwen3_5_moe",
}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            "from vllm.transformers_utils.configs.step3p5 import Step3p5Config\n",
            "from vllm_fl.configs.step3p5 import Step3p5Config\n",
            id="mapped-module",
        ),
        pytest.param(
            "from vllm.transformers_utils.configs import step3p5\n",
            "from vllm_fl.configs import step3p5\n",
            id="mapped-submodule",
        ),
        pytest.param(
            "from vllm.transformers_utils.configs import Step3p5Config\n",
            "from vllm_fl.configs.step3p5 import Step3p5Config\n",
            id="name-from-package",
        ),
        pytest.param(
            "from transformers import Qwen3_5Config, PretrainedConfig\n",
            "from transformers import PretrainedConfig\nfrom vllm_fl.configs.qwen3_5 import Qwen3_5Config\n",
            id="split-moved-name",
        ),
        pytest.param(
            "from transformers import Qwen3_5Config as Cfg\n",
            "from vllm_fl.configs.qwen3_5 import Qwen3_5Config as Cfg\n",
            id="alias-kept",
        ),
        pytest.param(
            "from transformers import Qwen3_5Config, Qwen3_5TextConfig  # configs\n",
            "from vllm_fl.configs.qwen3_5 import Qwen3_5Config, Qwen3_5TextConfig  # configs\n",
            id="every-name-moves-together",
        ),
        pytest.param(
            "from transformers import Qwen3_5MoeConfig, AutoConfig, Qwen3_5Config\n",
            "from transformers import AutoConfig\n"
            "from vllm_fl.configs.qwen3_5_moe import Qwen3_5MoeConfig\n"
            "from vllm_fl.configs.qwen3_5 import Qwen3_5Config\n",
            id="one-statement-per-home-in-order",
        ),
        pytest.param(
            """\
            from transformers import (
                PretrainedConfig,  # base
                Qwen3_5Config,  # new in transformers 5
                AutoConfig,
            )
            """,
            """\
            from transformers import (
                PretrainedConfig,  # base
                AutoConfig,
            )
            from vllm_fl.configs.qwen3_5 import Qwen3_5Config
            """,
            id="parenthesized-middle-name",
        ),
        pytest.param(
            """\
            from transformers import (
                PretrainedConfig,  # base
                Qwen3_5Config,
            )
            """,
            """\
            from transformers import (
                PretrainedConfig,  # base
            )
            from vllm_fl.configs.qwen3_5 import Qwen3_5Config
            """,
            id="parenthesized-last-name-keeps-trailing-comma",
        ),
        pytest.param(
            "from transformers import (PretrainedConfig,\n                          Qwen3_5Config)\n",
            "from transformers import (PretrainedConfig)\nfrom vllm_fl.configs.qwen3_5 import Qwen3_5Config\n",
            id="parenthesized-no-trailing-comma",
        ),
        pytest.param(
            "import vllm.transformers_utils.configs.step3p5 as step_cfg\n",
            "import vllm_fl.configs.step3p5 as step_cfg\n",
            id="import-as",
        ),
        pytest.param(
            "import flash_linear_attention\n",
            "import vllm_fl.ops.fla as flash_linear_attention\n",
            id="undotted-import-bound-under-old-name",
        ),
    ],
)
def test_rewrites(rewrite, before, after):
    out, count = rewrite(p2, before, module_map=MODULES, name_map=NAMES)
    assert out == dedent(after)
    assert count == 1


@pytest.mark.parametrize(
    "source",
    [
        "from transformers import PretrainedConfig\n",
        "from vllm.model_executor.models.utils import maybe_prefix\n",
        # the code spells vllm.transformers_utils.configs.step3p5.X: only a rewrite of every use is safe
        "import vllm.transformers_utils.configs.step3p5\n",
        # relative imports are P1's
        "from .kimi_k25_vit import MoonViT\n",
        "from vllm_fl.configs.qwen3_5 import Qwen3_5Config\n",
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p2, source, module_map=MODULES, name_map=NAMES) == (source, 0)


def test_upstream_model_header_shape(rewrite):
    # a step3p5-like model header: its config module and a config class both live in the plugin
    before = """\
        from collections.abc import Iterable

        import torch
        from transformers import PreTrainedConfig, Qwen3_5TextConfig

        from vllm.model_executor.models.kimi_k25_vit import MoonViT3dPretrainedModel
        from vllm.transformers_utils.configs.step3p5 import Step3p5Config

        from vllm.model_executor.models.utils import (
            AutoWeightsLoader,
            maybe_prefix,
        )
        """
    after = """\
        from collections.abc import Iterable

        import torch
        from transformers import PreTrainedConfig
        from vllm_fl.configs.qwen3_5 import Qwen3_5TextConfig

        from vllm_fl.models.kimi_k25_vit import MoonViT3dPretrainedModel
        from vllm_fl.configs.step3p5 import Step3p5Config

        from vllm.model_executor.models.utils import (
            AutoWeightsLoader,
            maybe_prefix,
        )
        """
    assert rewrite(p2, before, module_map=MODULES, name_map=NAMES) == (dedent(after), 3)
