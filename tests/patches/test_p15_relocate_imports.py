from textwrap import dedent

import pytest

from pytest_flmigrate.patches import p15_relocate_imports as p15
from tests.patches.conftest import patch_context

RELOCATIONS = {
    ("vllm.model_executor.layers.attention", "Attention"): ("vllm.attention.layer", "Attention"),
    ("vllm.v1.attention.backend", "AttentionType"): ("vllm.attention.backends.abstract", "AttentionType"),
    ("vllm.multimodal.processing", "BaseDummyInputsBuilder"): ("vllm.multimodal.profiling", "BaseDummyInputsBuilder"),
    ("vllm.inputs", "MultiModalDataDict"): ("vllm.multimodal.inputs", "MultiModalDataDict"),
    ("vllm.model_executor.models.qwen3_5", "Qwen3_5RMSNorm"): ("vllm.model_executor.layers.layernorm", "GemmaRMSNorm"),
}


@pytest.fixture
def rewrite_fixture(rewrite):
    return lambda source: rewrite(p15, source, relocations=RELOCATIONS)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            "from vllm.model_executor.layers.attention import Attention\n",
            "from vllm.attention.layer import Attention\n",
            id="whole-statement-moves",
        ),
        pytest.param(
            "from vllm.multimodal.processing import BaseMultiModalProcessor, BaseDummyInputsBuilder\n",
            "from vllm.multimodal.processing import BaseMultiModalProcessor\n"
            "from vllm.multimodal.profiling import BaseDummyInputsBuilder\n",
            id="split-the-moved-name",
        ),
        pytest.param(
            "from vllm.v1.attention.backend import AttentionType as AT\n",
            "from vllm.attention.backends.abstract import AttentionType as AT\n",
            id="alias-kept",
        ),
        pytest.param(
            "from vllm.model_executor.models.qwen3_5 import Qwen3_5RMSNorm\n",
            "from vllm.model_executor.layers.layernorm import GemmaRMSNorm as Qwen3_5RMSNorm\n",
            id="other-spelling-aliased-back",
        ),
        pytest.param(
            """\
            from vllm.inputs import (
                MultiModalDataDict,  # moved
                PromptType,
            )
            """,
            """\
            from vllm.inputs import (
                PromptType,
            )
            from vllm.multimodal.inputs import MultiModalDataDict
            """,
            id="parenthesized-with-comment",
        ),
        pytest.param(
            """\
            def f():
                from vllm.model_executor.layers.attention import Attention
                return Attention
            """,
            """\
            def f():
                from vllm.attention.layer import Attention
                return Attention
            """,
            id="import-inside-a-function",
        ),
    ],
)
def test_rewrites(rewrite_fixture, before, after):
    assert rewrite_fixture(before) == (dedent(after), 1)


@pytest.mark.parametrize(
    "source",
    [
        "from vllm.attention.layer import Attention\n",  # already the pin's module
        "from vllm.model_executor.layers.attention import CrossAttention\n",  # not in the table
        "from .attention import Attention\n",  # relative: P1's business first
        "import vllm.model_executor.layers.attention\n",
        "Attention = vllm.model_executor.layers.attention.Attention\n",
    ],
)
def test_left_alone(rewrite_fixture, source):
    assert rewrite_fixture(source) == (source, 0)


def test_counts_one_per_statement(rewrite_fixture):
    source = (
        "from vllm.model_executor.layers.attention import Attention\n"
        "from vllm.v1.attention.backend import AttentionType\n"
    )
    assert rewrite_fixture(source)[1] == 2


def test_relevance_only_when_a_relocated_name_is_spelled():
    context = patch_context(relocations=RELOCATIONS)
    assert p15.relevant("from x import AttentionType\n", context)
    assert not p15.relevant("import torch\n", context)
    assert not p15.relevant("from x import Attention\n", patch_context())
