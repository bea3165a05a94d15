from textwrap import dedent

import pytest

from pytest_flmigrate.patches import p04_mark_model_context as p4


def method(body: str) -> str:
    """``body`` as the body of an ``__init__`` in a class."""
    header = "class M(nn.Module):\n    def __init__(self, *, vllm_config, prefix=''):\n"
    return header + "".join(f"        {line}\n" if line else "\n" for line in dedent(body).splitlines())


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            """\
            with self._mark_language_model(vllm_config):
                self.language_model = LM(vllm_config=vllm_config)
            self.x = 1
            """,
            """\
            self.language_model = LM(vllm_config=vllm_config)
            self.x = 1
            """,
            id="language-dedented",
        ),
        pytest.param(
            """\
            # the text model
            with self._mark_language_model(vllm_config):  # marks children
                # built here
                self.language_model = LM(vllm_config=vllm_config)
                self.lm_head = Head()
                # end of the language part
            # after
            self.x = 1
            """,
            """\
            # the text model
            # marks children
            # built here
            self.language_model = LM(vllm_config=vllm_config)
            self.lm_head = Head()
            # end of the language part
            # after
            self.x = 1
            """,
            id="language-comments-survive",
        ),
        pytest.param(
            """\
            with self._mark_language_model(vllm_config): self.language_model = LM()
            """,
            """\
            self.language_model = LM()
            """,
            id="language-one-line-body",
        ),
        pytest.param(
            """\
            multimodal_config = vllm_config.model_config.get_multimodal_config()
            with self._mark_tower_model(vllm_config, {"image", "video"}):  # vision
                self.visual = Vision(config.vision_config)
            """,
            """\
            multimodal_config = vllm_config.model_config.get_multimodal_config()
            if (
                multimodal_config.get_limit_per_prompt("image")
                or multimodal_config.get_limit_per_prompt("video")
            ):  # vision
                self.visual = Vision(config.vision_config)
            else:
                self.visual = None
            """,
            id="tower-set-with-local-config",
        ),
        pytest.param(
            """\
            mm_cfg = vllm_config.model_config.multimodal_config
            with self._mark_tower_model(vllm_config, 'audio'):
                self.audio_tower = Audio(config.audio_config)
                self.projector = Projector(config)
            """,
            """\
            mm_cfg = vllm_config.model_config.multimodal_config
            if mm_cfg.get_limit_per_prompt('audio'):
                self.audio_tower = Audio(config.audio_config)
                self.projector = Projector(config)
            else:
                self.audio_tower = None
                self.projector = None
            """,
            id="tower-string-with-attribute-config",
        ),
        pytest.param(
            """\
            with self._mark_tower_model(vllm_config, "image"):
                self.vision_tower = Vision(config)
            multimodal_config = vllm_config.model_config.get_multimodal_config()
            """,
            """\
            if vllm_config.model_config.multimodal_config.get_limit_per_prompt("image"):
                self.vision_tower = Vision(config)
            else:
                self.vision_tower = None
            multimodal_config = vllm_config.model_config.get_multimodal_config()
            """,
            id="tower-config-bound-too-late",
        ),
        pytest.param(
            """\
            if config.has_vision:
                multimodal_config = vllm_config.model_config.get_multimodal_config()
                with self._mark_tower_model(vllm_config, {"image"}):
                    self.vision_tower = Vision(config)
            """,
            """\
            if config.has_vision:
                multimodal_config = vllm_config.model_config.get_multimodal_config()
                if vllm_config.model_config.multimodal_config.get_limit_per_prompt("image"):
                    self.vision_tower = Vision(config)
                else:
                    self.vision_tower = None
            """,
            id="tower-config-bound-conditionally-not-trusted",
        ),
        pytest.param(
            """\
            with self._mark_tower_model(vllm_config, "image"):
                if config.use_moonvit:
                    self.vision_tower = MoonViT(config)
                else:
                    self.vision_tower = SigLIP(config)
                hidden = config.hidden_size
                self.mm_projector = Projector(hidden)
            """,
            """\
            if vllm_config.model_config.multimodal_config.get_limit_per_prompt("image"):
                if config.use_moonvit:
                    self.vision_tower = MoonViT(config)
                else:
                    self.vision_tower = SigLIP(config)
                hidden = config.hidden_size
                self.mm_projector = Projector(hidden)
            else:
                self.vision_tower = None
                self.mm_projector = None
            """,
            id="tower-nested-branches-and-local-used-only-inside",
        ),
    ],
)
def test_rewrites(rewrite, before, after):
    assert rewrite(p4, method(before)) == (method(after), 1)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            "with self._mark_tower_model(vllm_config, modalities):\n    self.v = V()\n",
            id="modalities-not-literal",
        ),
        pytest.param(
            'with self._mark_tower_model(self.vllm_config, "image"):\n    self.v = V()\n',
            id="config-not-a-name",
        ),
        pytest.param(
            "with self._mark_language_model(self.vllm_config):\n    self.lm = LM()\n",
            id="language-config-not-a-name",
        ),
        pytest.param(
            'with self._mark_tower_model(vllm_config, {"image", f"{m}"}):\n    self.v = V()\n',
            id="modality-not-a-plain-string",
        ),
        pytest.param(
            'with self._mark_tower_model(vllm_config, "image", targets=Vision):\n    self.v = V()\n',
            id="targets-keyword",
        ),
        pytest.param(
            "with self._mark_language_model(vllm_config, targets=LM):\n    self.lm = LM()\n",
            id="language-targets-keyword",
        ),
        pytest.param(
            'with self._mark_tower_model(vllm_config, "image") as names:\n    self.v = V()\n',
            id="as-target",
        ),
        pytest.param(
            'with self._mark_tower_model(vllm_config, "image"), torch.device("meta"):\n    self.v = V()\n',
            id="several-items",
        ),
        pytest.param(
            'with self._mark_tower_model(vllm_config, "audio"):\n'
            "    self.audio = Audio()\n"
            "    depth = len(config.layers)\n"
            "self.language_model.depth = depth\n",
            id="tower-binds-a-local-used-after",
        ),
        pytest.param(
            "with self._mark_composite_model(vllm_config, language_targets=LM, tower_targets={}):\n    self.v = V()\n",
            id="composite-model",
        ),
    ],
)
def test_left_alone(rewrite, body):
    source = method(body)
    assert rewrite(p4, source) == (source, 0)


def test_tower_outside_a_function_left_alone(rewrite):
    source = 'with self._mark_tower_model(vllm_config, "image"):\n    self.v = V()\n'
    assert rewrite(p4, source) == (source, 0)


def test_upstream_vision_language_init_shape(rewrite):
    # a Qwen3.5-like multimodal __init__ (shape of the upstream model), written here
    before = """\
        nn.Module.__init__(self)
        config = vllm_config.model_config.hf_config
        quant_config = vllm_config.quant_config
        multimodal_config = vllm_config.model_config.get_multimodal_config()

        self.config = config
        self.multimodal_config = multimodal_config

        with self._mark_tower_model(vllm_config, {"image", "video"}):
            self.visual = VisionTransformer(
                config.vision_config,
                quant_config=quant_config,
                prefix=maybe_prefix(prefix, "visual"),
            )

        with self._mark_language_model(vllm_config):
            self.language_model = TextForCausalLM(
                vllm_config=vllm_config, prefix=maybe_prefix(prefix, "language_model")
            )

        self.make_empty_intermediate_tensors = (
            self.language_model.make_empty_intermediate_tensors
        )
        """
    after = """\
        nn.Module.__init__(self)
        config = vllm_config.model_config.hf_config
        quant_config = vllm_config.quant_config
        multimodal_config = vllm_config.model_config.get_multimodal_config()

        self.config = config
        self.multimodal_config = multimodal_config

        if (
            multimodal_config.get_limit_per_prompt("image")
            or multimodal_config.get_limit_per_prompt("video")
        ):
            self.visual = VisionTransformer(
                config.vision_config,
                quant_config=quant_config,
                prefix=maybe_prefix(prefix, "visual"),
            )
        else:
            self.visual = None

        self.language_model = TextForCausalLM(
            vllm_config=vllm_config, prefix=maybe_prefix(prefix, "language_model")
        )

        self.make_empty_intermediate_tensors = (
            self.language_model.make_empty_intermediate_tensors
        )
        """
    assert rewrite(p4, method(before)) == (method(after), 2)


MULTIMODAL = """\
class M(nn.Module, SupportsMultiModal, SupportsPP):
    def __init__(self, *, vllm_config, prefix=''):
        with self._mark_language_model(vllm_config):
            self.language_model = LM(vllm_config=vllm_config)
        self.x = 1
"""


def test_a_class_on_upstreams_default_gets_the_language_model_getter(rewrite):
    after, count = rewrite(p4, MULTIMODAL)
    assert count == 1
    assert after == (
        "class M(nn.Module, SupportsMultiModal, SupportsPP):\n"
        "    def __init__(self, *, vllm_config, prefix=''):\n"
        "        self.language_model = LM(vllm_config=vllm_config)\n"
        "        self.x = 1\n"
        "\n"
        "    def get_language_model(self):\n"
        "        return self.language_model\n"
    )


@pytest.mark.parametrize(
    "source",
    [
        MULTIMODAL + "    def get_language_model(self):\n        return self.x\n",  # its own
        MULTIMODAL.replace("nn.Module, SupportsMultiModal", "Qwen3VLForConditionalGeneration, SupportsMultiModal"),
        MULTIMODAL.replace("SupportsMultiModal, ", ""),  # no interface declaring it
        MULTIMODAL.replace("self.x = 1", "").replace(
            "LM(vllm_config=vllm_config)\n", "LM(vllm_config)\n            self.lm_head = Head()\n"
        ),
    ],
    ids=["defines-it", "model-base", "not-multimodal", "two-attributes"],
)
def test_no_getter_where_upstreams_class_does_not_use_the_default(rewrite, source):
    after, count = rewrite(p4, source)
    assert count == 1 and "return self.language_model" not in after
