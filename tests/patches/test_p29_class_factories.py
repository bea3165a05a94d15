import pytest

from pytest_flmigrate.patches import p29_class_factories as p29

POOLER = "from vllm.model_executor.layers.pooler import DispatchPooler\n"
BUILT = 'DispatchPooler({"token_embed": Pooler.for_token_embed(%s), "embed": Pooler.for_embed(%s)})'


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            POOLER + "pooler = DispatchPooler.for_embedding(pooler_config)\n",
            POOLER
            + "from vllm.model_executor.layers.pooler import Pooler\n"
            + "pooler = "
            + BUILT % ("pooler_config", "pooler_config")
            + "\n",
        ),
        (
            "from vllm.model_executor.layers.pooler import DispatchPooler, Pooler\n"
            "pooler = DispatchPooler.for_embedding(vllm_config.model_config.pooler_config)\n",
            "from vllm.model_executor.layers.pooler import DispatchPooler, Pooler\n"
            "pooler = " + BUILT % (("vllm_config.model_config.pooler_config",) * 2) + "\n",
        ),
    ],
)
def test_the_factory_becomes_the_pins_construction(rewrite, before, after):
    assert rewrite(p29, before) == (after, 1)


@pytest.mark.parametrize(
    "source",
    [
        POOLER + "pooler = DispatchPooler.for_embedding(load_config())\n",  # a computed argument
        POOLER + "pooler = DispatchPooler.for_embedding(pooler_config=cfg)\n",  # a keyword
        POOLER + "pooler = DispatchPooler.for_seq_cls(cfg)\n",  # no entry
        "from elsewhere import DispatchPooler\npooler = DispatchPooler.for_embedding(cfg)\n",
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p29, source) == (source, 0)
