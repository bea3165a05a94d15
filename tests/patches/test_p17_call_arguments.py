from textwrap import dedent

import pytest

from pytest_flmigrate.patches import p17_call_arguments as p17
from tests.patches.conftest import patch_context

POOLING = "from vllm.model_executor.models.interfaces_base import default_pooling_type\n"
GETATTR = "from vllm.config.utils import getattr_iter\n"
COMPILE = "from vllm.compilation.decorators import support_torch_compile\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            POOLING + '@default_pooling_type(seq_pooling_type="CLS")\nclass M: ...\n',
            POOLING + '@default_pooling_type(pooling_type="CLS")\nclass M: ...\n',
            id="seq-renamed",
        ),
        pytest.param(
            POOLING + '@default_pooling_type(seq_pooling_type="MEAN", tok_pooling_type="ALL")\nclass M: ...\n',
            POOLING + '@default_pooling_type(pooling_type="MEAN")\nclass M: ...\n',
            id="tok-all-is-upstream-default-dropped",
        ),
        pytest.param(
            POOLING + "@default_pooling_type(seq_pooling_type='CLS', tok_pooling_type='ALL')\nclass M: ...\n",
            POOLING + "@default_pooling_type(pooling_type='CLS')\nclass M: ...\n",
            id="single-quoted-literal",
        ),
        pytest.param(
            POOLING + '@default_pooling_type(tok_pooling_type="ALL")\nclass M: ...\n',
            POOLING + '@default_pooling_type(pooling_type="LAST")\nclass M: ...\n',
            id="only-tok-all-becomes-upstream-seq-default",
        ),
        pytest.param(
            '"""Relative import, as upstream model files write it."""\n'
            "from .interfaces_base import default_pooling_type as dpt\n"
            '@dpt(seq_pooling_type="CLS")\nclass M: ...\n',
            '"""Relative import, as upstream model files write it."""\n'
            "from .interfaces_base import default_pooling_type as dpt\n"
            '@dpt(pooling_type="CLS")\nclass M: ...\n',
            id="relative-import-and-alias",
        ),
        pytest.param(
            GETATTR + "size = getattr_iter(config, names)\n",
            GETATTR + "size = getattr_iter(config, names, default=None)\n",
            id="default-filled",
        ),
        pytest.param(
            GETATTR + "size = getattr_iter(\n    config,\n    names,\n)\n",
            GETATTR + "size = getattr_iter(\n    config,\n    names,\n    default=None,\n)\n",
            id="one-argument-per-line-kept",
        ),
        pytest.param(
            COMPILE
            + "@support_torch_compile(\n    dynamic_arg_dims={'x': 0},\n    is_encoder=True,\n)\nclass E: ...\n",
            COMPILE + "@support_torch_compile(\n    dynamic_arg_dims={'x': 0},\n)\nclass E: ...\n",
            id="compile-hint-dropped-whatever-its-value",
        ),
        pytest.param(
            GETATTR + "size = getattr_iter(config, names)  # comment\n",
            GETATTR + "size = getattr_iter(config, names, default=None)  # comment\n",
            id="comment-kept",
        ),
    ],
)
def test_rewrites(rewrite, before, after):
    assert rewrite(p17, before, module_name="vllm.model_executor.models.bert") == (dedent(after), 1)


@pytest.mark.parametrize(
    "source",
    [
        # a tok_pooling_type other than upstream's default has no pinned spelling
        POOLING + '@default_pooling_type(tok_pooling_type="STEP")\nclass M: ...\n',
        POOLING + '@default_pooling_type(seq_pooling_type="CLS", tok_pooling_type="STEP")\nclass M: ...\n',
        POOLING + "@default_pooling_type(**kinds)\nclass M: ...\n",
        POOLING + '@default_pooling_type("CLS")\nclass M: ...\n',  # already the pin's spelling
        POOLING + '@default_pooling_type(pooling_type="CLS")\nclass M: ...\n',
        # not imported from the module the entry was checked against
        "from somewhere import default_pooling_type\n@default_pooling_type(seq_pooling_type='CLS')\nclass M: ...\n",
        '@default_pooling_type(seq_pooling_type="CLS")\nclass M: ...\n',
        GETATTR + "size = getattr_iter(config, names, 0)\n",
        GETATTR + "size = getattr_iter(config, names, default=0)\n",
        GETATTR + "size = getattr_iter(config, names, default_factory=list)\n",
        GETATTR + "size = getattr_iter(*args)\n",
        GETATTR + "size = other.getattr_iter(config, names)\n",
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p17, source, module_name="vllm.model_executor.models.bert") == (source, 0)


def test_counts_each_call(rewrite):
    source = (
        POOLING + '@default_pooling_type(seq_pooling_type="CLS")\nclass A: ...\n'
        '@default_pooling_type(seq_pooling_type="LAST")\nclass B: ...\n'
    )
    assert rewrite(p17, source)[1] == 2


def test_idempotent(rewrite):
    once, _ = rewrite(p17, GETATTR + "x = getattr_iter(c, n)\n")
    assert rewrite(p17, once) == (once, 0)


def test_every_rule_says_why_and_names_both_definitions():
    for rule in p17.RULES:
        assert rule.why and ":" in rule.pinned and ":" in rule.upstream
        assert rule.pinned.split(":")[0] in rule.modules
        assert rule.rename or rule.drop_if or rule.fill or rule.drop


def test_relevance():
    context = patch_context()
    assert p17.relevant(GETATTR, context)
    assert not p17.relevant("import torch\n", context)
