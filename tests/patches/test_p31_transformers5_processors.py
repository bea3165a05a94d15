"""P31: transformers 5 processors copied for a transformers 4 pin: doc-only decorators dropped, parts declared."""

from __future__ import annotations

import ast
from textwrap import dedent

from packaging.version import Version

from pytest_flmigrate.patches import p31_transformers5_processors as p31
from tests.patches.conftest import patch_context

PROCESSING = "transformers.models.tinyasr.processing_tinyasr"

PROCESSOR = '''\
import numpy as np

from transformers.processing_utils import ProcessingKwargs, ProcessorMixin
from transformers.utils import auto_docstring, logging
from transformers.utils.import_utils import is_torch_available, requires


# audio and text
@requires(backends=("torch",))
@auto_docstring
class TinyAsrProcessor(ProcessorMixin):
    r"""A processor of audio and text."""

    valid_processor_kwargs = ProcessingKwargs

    def __init__(self, feature_extractor, tokenizer, chat_template=None, audio_token="<a>"):
        super().__init__(feature_extractor, tokenizer, chat_template=chat_template)

    @auto_docstring
    def __call__(self, text=None, audio=None):
        return self.tokenizer(text)


@auto_docstring(custom_intro="Pads.")
def pad(values):
    return np.asarray(values)
'''


def test_doc_only_decorators_go_with_their_imports_and_the_parts_are_declared(rewrite):
    out, count = rewrite(p31, PROCESSOR, module_name=PROCESSING)
    assert count == 5  # four decorators, one class declared
    assert out == dedent('''\
        import numpy as np

        from transformers.processing_utils import ProcessingKwargs, ProcessorMixin
        from transformers.utils import logging
        from transformers.utils.import_utils import is_torch_available


        # audio and text
        class TinyAsrProcessor(ProcessorMixin):
            r"""A processor of audio and text."""

            attributes = ["feature_extractor", "tokenizer"]
            feature_extractor_class = "AutoFeatureExtractor"
            tokenizer_class = "AutoTokenizer"

            valid_processor_kwargs = ProcessingKwargs

            def __init__(self, feature_extractor, tokenizer, chat_template=None, audio_token="<a>"):
                super().__init__(feature_extractor, tokenizer, chat_template=chat_template)

            def __call__(self, text=None, audio=None):
                return self.tokenizer(text)


        def pad(values):
            return np.asarray(values)
    ''')


def test_each_part_gets_the_auto_class_transformers_5_loads_it_with(rewrite):
    source = """
        class Vision(ProcessorMixin):
            def __init__(self, image_processor=None, tokenizer=None, video_processor=None, chat_template=None, **kwargs):
                super().__init__(image_processor, tokenizer, video_processor, chat_template=chat_template)
    """
    out, _ = rewrite(p31, source, module_name=PROCESSING)
    body = ast.parse(out).body[0].body  # type: ignore[attr-defined]
    declared = {s.targets[0].id: ast.literal_eval(s.value) for s in body if isinstance(s, ast.Assign)}
    assert declared == {
        "attributes": ["image_processor", "tokenizer", "video_processor"],
        "image_processor_class": "AutoImageProcessor",
        "tokenizer_class": "AutoTokenizer",
        "video_processor_class": "AutoVideoProcessor",
    }


def test_what_needs_no_declaration_is_left_alone(rewrite):
    source = """
        class Declared(ProcessorMixin):
            attributes = ["tokenizer"]
            tokenizer_class = "LlamaTokenizer"

            def __init__(self, tokenizer):
                super().__init__(tokenizer)


        class Inherited(ProcessorMixin):
            tokenizer_class = "AutoTokenizer"


        class NotAProcessor:
            def __init__(self, tokenizer):
                self.tokenizer = tokenizer


        class Voice(ProcessorMixin):
            def __init__(self, audio_processor, tokenizer):
                super().__init__(audio_processor, tokenizer)
    """
    out, count = rewrite(p31, source, module_name=PROCESSING)
    assert (out, count) == (dedent(source), 0)  # Voice: a part 4.x has no attribute for (the backport refuses it)
    voice = ast.parse(dedent(source)).body[3]
    assert isinstance(voice, ast.ClassDef)
    assert p31.unsupported_parts(voice) == (
        "Voice takes the part audio_processor, which transformers 4's ProcessorMixin has no attribute for "
        "(it knows tokenizer, image_processor, video_processor, feature_extractor)"
    )


def test_a_decorator_that_changes_behaviour_stays(rewrite):
    source = """
        from transformers.integrations import use_kernel_forward_from_hub


        @use_kernel_forward_from_hub("RMSNorm")
        class Norm:
            pass
    """
    assert rewrite(p31, source, module_name=PROCESSING) == (dedent(source), 0)


def test_relevant_only_to_copies_of_transformers_at_a_transformers_4_pin():
    source = "@auto_docstring\nclass P(ProcessorMixin):\n    pass\n"
    assert p31.relevant(source, patch_context(PROCESSING))
    assert not p31.relevant(source, patch_context("vllm.model_executor.models.tiny"))
    assert not p31.relevant(source, patch_context(PROCESSING, pinned_transformers=Version("5.19.0")))
    assert not p31.relevant("class P:\n    pass\n", patch_context(PROCESSING))


def test_every_doc_only_decorator_says_what_it_does():
    assert set(p31.DOC_ONLY_DECORATORS) == {"auto_docstring", "requires"}
    assert all(len(why) > 40 for why in p31.DOC_ONLY_DECORATORS.values())
