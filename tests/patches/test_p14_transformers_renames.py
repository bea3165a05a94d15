from textwrap import dedent

import pytest
from packaging.version import Version

from pytest_flmigrate.patches import p14_transformers_renames as p14
from tests.patches.conftest import patch_context


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            "from transformers import PreTrainedConfig\n",
            "from transformers import PretrainedConfig as PreTrainedConfig\n",
            id="top-level",
        ),
        pytest.param(
            "from transformers.configuration_utils import PreTrainedConfig\n",
            "from transformers.configuration_utils import PretrainedConfig as PreTrainedConfig\n",
            id="configuration-utils",
        ),
        pytest.param(
            "from transformers import PreTrainedConfig as Base\n",
            "from transformers import PretrainedConfig as Base\n",
            id="alias-kept",
        ),
        pytest.param(
            "from transformers import AutoConfig, PreTrainedConfig  # configs\n",
            "from transformers import AutoConfig, PretrainedConfig as PreTrainedConfig  # configs\n",
            id="other-names-untouched",
        ),
        pytest.param(
            """\
            from transformers import (
                PythonBackend,
                TokenizersBackend,  # fast
            )
            """,
            """\
            from transformers import (
                PreTrainedTokenizer as PythonBackend,
                PreTrainedTokenizerFast as TokenizersBackend,  # fast
            )
            """,
            id="tokenizer-backends",
        ),
        pytest.param(
            "import transformers\n\n\nclass C(transformers.PreTrainedConfig):\n    pass\n",
            "import transformers\n\n\nclass C(transformers.PretrainedConfig):\n    pass\n",
            id="attribute-after-import",
        ),
    ],
)
def test_rewrites(rewrite, before, after):
    assert rewrite(p14, before) == (dedent(after), 1)


@pytest.mark.parametrize(
    "source",
    [
        "from transformers import PretrainedConfig\n",
        "from transformers import PretrainedConfig as PreTrainedConfig\n",
        "from mypkg import PreTrainedConfig\n",
        # ``transformers`` here is not the module
        "transformers = load()\nx = transformers.PreTrainedConfig\n",
        "import transformers as tf\nx = tf.PreTrainedConfig\n",
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p14, source) == (source, 0)


def test_renames_are_pairs_of_names():
    assert p14.RENAMES[("transformers", "PreTrainedConfig")] == "PretrainedConfig"
    assert all(old != new for (_, old), new in p14.RENAMES.items())


def test_upstream_config_module_shape(rewrite):
    # a config module of a model newer than the pin (transformers_utils/configs-like), written here
    before = """\
        from transformers.configuration_utils import PreTrainedConfig


        class NewModelTextConfig(PreTrainedConfig):
            model_type = "new_model_text"

            def __init__(self, vocab_size=151936, **kwargs):
                self.vocab_size = vocab_size
                super().__init__(**kwargs)
        """
    after = before.replace("import PreTrainedConfig", "import PretrainedConfig as PreTrainedConfig")
    assert rewrite(p14, before) == (dedent(after), 1)


def test_only_a_pin_running_transformers_4_needs_the_old_names():
    source = "from transformers import PreTrainedConfig\n"
    assert p14.relevant(source, patch_context(pinned_transformers=Version("4.56.2")))
    assert not p14.relevant(source, patch_context(pinned_transformers=Version("5.12.1")))
