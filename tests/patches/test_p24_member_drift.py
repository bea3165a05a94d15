from textwrap import dedent

import pytest

from pytest_flmigrate.patches import p24_member_drift as p24
from tests.patches.conftest import patch_context

METADATA = "from vllm.v1.pool.metadata import PoolingMetadata\n"
POOLER = "from vllm.config import PoolerConfig\n"
PARAMS = "from vllm.pooling_params import PoolingParams\n"
COMPAT = "vllm.model_executor.layers.pooler.seqwise.methods"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            METADATA + "def f(m: PoolingMetadata):\n    return m.get_pooling_cursor()\n",
            METADATA + "def f(m: PoolingMetadata):\n    return m.pooling_cursor\n",
            id="method-to-field",
        ),
        pytest.param(
            METADATA + "def f(m: PoolingMetadata):\n    c = m.get_pooling_cursor().first_token_indices_gpu\n",
            METADATA + "def f(m: PoolingMetadata):\n    c = m.pooling_cursor.first_token_indices_gpu\n",
            id="inside-a-chain",
        ),
        pytest.param(
            METADATA + "def f(m: 'PoolingMetadata | None'):\n    return m.get_prompt_token_ids_cpu()\n",
            METADATA + "def f(m: 'PoolingMetadata | None'):\n"
            "    return [token_ids.cpu() for token_ids in m.get_prompt_token_ids()]\n",
            id="string-optional-annotation",
        ),
        pytest.param(
            POOLER + "def f(c: PoolerConfig):\n    return g(c.get_seq_pooling_type())\n",
            POOLER + "def f(c: PoolerConfig):\n    return g(c.pooling_type)\n",
            id="seq-type",
        ),
        pytest.param(
            POOLER + "def f(c: PoolerConfig):\n    return g(c.get_tok_pooling_type())\n",
            POOLER + 'def f(c: PoolerConfig):\n    return g(("STEP" if c.pooling_type == "STEP" else "ALL"))\n',
            id="tok-type",
        ),
        pytest.param(
            PARAMS + "def f(p: PoolingParams):\n    if (chunks := p.late_chunking_params) is not None:\n        pass\n",
            PARAMS + "def f(p: PoolingParams):\n    if (chunks := None) is not None:\n        pass\n",
            id="field-of-a-feature-the-pin-lacks",
        ),
        pytest.param(
            "def head(model_config):\n    return Head(mean=model_config.pooler_config.logit_mean)\n",
            "def head(model_config):\n    return Head(mean=None)\n",
            id="a-field-of-a-feature-the-pin-lacks-held-by-a-config",
        ),
        pytest.param(
            "class Info:\n    def __init__(self):\n        tokenizer = self.get_tokenizer()\n"
            "        self.pad = tokenizer.convert_tokens_to_ids('<pad>')\n",
            "class Info:\n    def __init__(self):\n        tokenizer = self.get_tokenizer()\n"
            "        self.pad = tokenizer.get_vocab().get('<pad>', getattr(tokenizer, \"unk_token_id\", None))\n",
            id="a-literal-argument-on-a-local-bound-to-a-returning-method",
        ),
        pytest.param(
            "from .....v1.pool.metadata import PoolingMetadata as PM\n"
            "class Pool:\n    def forward(self, x, m: PM):\n        return x[m.get_pooling_cursor().last_token_indices_gpu]\n",
            "from .....v1.pool.metadata import PoolingMetadata as PM\n"
            "class Pool:\n    def forward(self, x, m: PM):\n        return x[m.pooling_cursor.last_token_indices_gpu]\n",
            id="relative-import-alias-and-method",
        ),
    ],
)
def test_rewrites(rewrite, before, after):
    assert rewrite(p24, before, module_name=COMPAT) == (dedent(after), 1)


@pytest.mark.parametrize(
    "source",
    [
        # not an annotated parameter, or not the listed class
        METADATA + "def f(m):\n    return m.get_pooling_cursor()\n",
        METADATA + "def f(m: Other):\n    return m.get_pooling_cursor()\n",
        "from elsewhere import PoolingMetadata\ndef f(m: PoolingMetadata):\n    return m.get_pooling_cursor()\n",
        # other shapes: arguments, no call, a store
        METADATA + "def f(m: PoolingMetadata):\n    return m.get_pooling_cursor(1)\n",
        METADATA + "def f(m: PoolingMetadata):\n    return m.get_pooling_cursor\n",
        PARAMS + "def f(p: PoolingParams):\n    p.late_chunking_params = None\n",
        # a tokenizer's lookup with another argument than one string literal, or not from get_tokenizer()
        "def f(self, name):\n    t = self.get_tokenizer()\n    return t.convert_tokens_to_ids(name)\n",
        "def f(self):\n    t = self.get_tokenizer()\n    return t.convert_tokens_to_ids(['<a>', '<b>'])\n",
        "def f(self):\n    t = self.get_tokenizer()\n    return t.convert_tokens_to_ids(tokens='<a>')\n",
        "def f(self):\n    t = self.get_tokenizer(trust=True)\n    return t.convert_tokens_to_ids('<a>')\n",
        "def f(self, t):\n    return t.convert_tokens_to_ids('<a>')\n",
        # held by a config object, but the pin's spelling reads the receiver, or no entry
        "def f(model_config):\n    return model_config.pooler_config.get_seq_pooling_type()\n",
        "def f(model_config):\n    return model_config.pooler_config.pooling_type\n",
        # a parameter of an inner function shadows the outer one
        METADATA + "def f(m: PoolingMetadata):\n    def g(m):\n        return m.get_pooling_cursor()\n",
        # the pin's spelling already
        METADATA + "def f(m: PoolingMetadata):\n    return m.pooling_cursor\n",
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p24, source, module_name=COMPAT) == (source, 0)


def test_a_local_bound_to_a_member_of_known_class_is_a_receiver_too(rewrite):
    source = METADATA + dedent(
        """\
        def f(m: PoolingMetadata):
            cursor = m.get_pooling_cursor()
            mask = cursor.get_finished_mask()
            cursor = other()
            return mask, cursor.get_finished_mask()
        """
    )
    after = METADATA + dedent(
        """\
        def f(m: PoolingMetadata):
            cursor = m.pooling_cursor
            mask = cursor.is_finished().tolist()
            cursor = other()
            return mask, cursor.get_finished_mask()
        """
    )
    assert rewrite(p24, source, module_name=COMPAT) == (after, 2)


def test_inner_function_sees_the_outer_parameter(rewrite):
    source = METADATA + "def f(m: PoolingMetadata):\n    def g():\n        return m.get_pooling_cursor()\n"
    assert rewrite(p24, source, module_name=COMPAT)[0].endswith("return m.pooling_cursor\n")


def test_idempotent(rewrite):
    once, count = rewrite(p24, POOLER + "def f(c: PoolerConfig):\n    return c.get_tok_pooling_type()\n")
    assert count == 1 and rewrite(p24, once) == (once, 0)


@pytest.mark.parametrize(
    ("text", "left"),
    [
        ("def f(m):\n    return m.get_pooling_cursor()\n", set()),
        ("def f(m):\n    return m.get_pooling_cursor\n", {("PoolingMetadata", "get_pooling_cursor")}),
        ("def f(m):\n    return m.get_pooling_cursor(0)\n", {("PoolingMetadata", "get_pooling_cursor")}),
        ("def f(p):\n    return p.late_chunking_params\n", set()),
        ("def f(p):\n    p.late_chunking_params = 1\n", {("PoolingParams", "late_chunking_params")}),
    ],
)
def test_untranslated_reads_are_what_a_backport_would_still_read(text, left):
    reads = {("PoolingMetadata", "get_pooling_cursor"), ("PoolingParams", "late_chunking_params")}
    reads = {read for read in reads if read[1] in text}
    assert p24.untranslated(text, reads | {("PoolingMetadata", "nothing_like_it")}) == left | {
        ("PoolingMetadata", "nothing_like_it")
    }


def test_every_entry_says_why_and_spells_the_receiver():
    for drift in p24.DRIFTS:
        assert drift.why and "{value}" in drift.pinned or drift.pinned == "None"
        assert drift.modules and drift.owner and drift.member


def test_relevance():
    context = patch_context()
    assert p24.relevant(METADATA + "x.get_pooling_cursor()", context)
    assert not p24.relevant("import torch\n", context)
