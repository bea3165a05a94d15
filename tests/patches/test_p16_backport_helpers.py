from textwrap import dedent

import pytest

from pytest_flmigrate.patches import p16_backport_helpers as p16
from tests.patches.conftest import patch_context

BACKPORTS = {
    ("vllm.model_executor.models.utils", "get_spec_layer_idx_from_weight_name"): (
        "vllm_fl.compat.model_executor.models.utils",
        "get_spec_layer_idx_from_weight_name",
    ),
    ("vllm.model_executor.models.vision", "is_vit_use_data_parallel"): (
        "vllm_fl.compat.model_executor.models.vision",
        "is_vit_use_data_parallel",
    ),
    ("vllm.config", "get_current_vllm_config_or_none"): (
        "vllm_fl.compat.config.vllm",
        "get_current_vllm_config_or_none",
    ),
}


@pytest.fixture
def rewrite_fixture(rewrite):
    return lambda source: rewrite(p16, source, backports=BACKPORTS)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            """\
            from vllm.model_executor.models.utils import (
                AutoWeightsLoader,
                get_spec_layer_idx_from_weight_name,
            )
            """,
            """\
            from vllm.model_executor.models.utils import (
                AutoWeightsLoader,
            )
            from vllm_fl.compat.model_executor.models.utils import get_spec_layer_idx_from_weight_name
            """,
            id="helper-split-off",
        ),
        pytest.param(
            "from vllm.model_executor.models.vision import is_vit_use_data_parallel\n",
            "from vllm_fl.compat.model_executor.models.vision import is_vit_use_data_parallel\n",
            id="whole-statement",
        ),
        pytest.param(
            # re-exported upstream by a package, copied from the module defining it
            "from vllm.config import VllmConfig, get_current_vllm_config_or_none as current\n",
            "from vllm.config import VllmConfig\n"
            "from vllm_fl.compat.config.vllm import get_current_vllm_config_or_none as current\n",
            id="from-a-re-exporting-package-alias-kept",
        ),
    ],
)
def test_rewrites(rewrite_fixture, before, after):
    assert rewrite_fixture(before) == (dedent(after), 1)


@pytest.mark.parametrize(
    "source",
    [
        "from vllm.model_executor.models.utils import maybe_prefix\n",
        "from vllm_fl.compat.model_executor.models.utils import get_spec_layer_idx_from_weight_name\n",
        "from vllm.model_executor.models.deepseek_v2 import get_spec_layer_idx_from_weight_name\n",
        "import vllm.model_executor.models.utils as utils\n",
    ],
)
def test_left_alone(rewrite_fixture, source):
    assert rewrite_fixture(source) == (source, 0)


def test_idempotent(rewrite_fixture):
    once, _ = rewrite_fixture("from vllm.model_executor.models.vision import is_vit_use_data_parallel\n")
    assert rewrite_fixture(once) == (once, 0)


def test_relevance_only_when_a_backported_name_is_spelled():
    context = patch_context(backports=BACKPORTS)
    assert p16.relevant("x = is_vit_use_data_parallel()\n", context)
    assert not p16.relevant("from vllm.model_executor.models.utils import maybe_prefix\n", context)
