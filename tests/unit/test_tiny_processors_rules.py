"""tiny/processors.py's rules that need no transformers: which tokens a processor holds, how the
tiny config follows the extended tokenizer, how a processor's sizes follow the tiny config (the
discovery and building run in the upstream env: tests/runtime/test_tiny_processors.py)."""

from __future__ import annotations

from types import SimpleNamespace

from pytest_flmigrate.tiny import processors


def test_a_processors_placeholder_tokens_are_its_string_attributes_named_token():
    processor = SimpleNamespace(
        image_token="<|image_pad|>",
        video_token="<|video_pad|>",
        audio_token="",
        chat_template="{{x}}",
        image_token_id=None,
    )
    assert processors.special_tokens(processor) == {"image": "<|image_pad|>", "video": "<|video_pad|>"}


def test_the_config_follows_the_extended_tokenizer():
    text = SimpleNamespace(vocab_size=2048, image_token_id=5)
    vision = SimpleNamespace(hidden_size=128)
    config = SimpleNamespace(
        vocab_size=2048,
        image_token_id=151655,
        image_token_index=7,
        video_token_id=151656,
        vision_start_token_id=9,
        sub_configs={"text_config": object, "vision_config": object},
        text_config=text,
        vision_config=vision,
    )
    processors.adapt_config(config, 2050, {"image": 2048, "video": 2049})
    assert (config.vocab_size, config.image_token_id, config.image_token_index, config.video_token_id) == (
        2050,
        2048,
        2048,
        2049,
    )
    assert config.vision_start_token_id == 9  # no processor token of that kind: left as shrunk
    assert (text.vocab_size, text.image_token_id) == (2050, 2048)
    assert not hasattr(vision, "vocab_size")


def test_sizes_follow_the_tiny_config_and_dynamic_resolution_is_capped():
    vision = SimpleNamespace(patch_size=16, spatial_merge_size=4, temporal_patch_size=2, image_size=224)
    config = SimpleNamespace(vision_config=vision, audio_config=SimpleNamespace(num_mel_bins=80))
    image = SimpleNamespace(
        patch_size=14,
        merge_size=2,
        temporal_patch_size=1,
        size={"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 1280},
        max_pixels=28 * 28 * 1280,
        min_pixels=56 * 56,
    )
    processors.align(image, config)
    assert (image.patch_size, image.merge_size, image.temporal_patch_size) == (16, 4, 2)
    assert image.size == {"shortest_edge": 224, "longest_edge": 224}
    assert image.max_pixels == processors.MAX_PIXELS and image.min_pixels == 56 * 56
    audio = SimpleNamespace(feature_size=128, sampling_rate=16000)
    processors.align(audio, config)
    assert audio.feature_size == 80
    untouched = SimpleNamespace(size=[384, 384])
    processors.align(untouched, SimpleNamespace())
    assert untouched.size == [384, 384]


def test_a_tokenizer_config_saved_by_transformers_5_is_made_loadable_by_transformers_4(tmp_path):
    """A processor saved by transformers 5 names its tokenizer ``TokenizersBackend`` and lists its
    extra tokens as ``extra_special_tokens``; the pinned env's transformers 4 knows neither, so the
    tiny checkpoint says ``PreTrainedTokenizerFast`` (transformers 5's alias of the same class) and
    ``additional_special_tokens``."""
    import json

    path = tmp_path / "tokenizer_config.json"
    saved = {"tokenizer_class": "TokenizersBackend", "extra_special_tokens": ["<a>", "<b>"], "model_max_length": 64}
    path.write_text(json.dumps(saved))
    processors.portable_tokenizer_config(path)
    assert json.loads(path.read_text()) == {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "additional_special_tokens": ["<a>", "<b>"],
        "model_max_length": 64,
    }
    kept = {"tokenizer_class": "Qwen2TokenizerFast", "extra_special_tokens": {"image_token": "<img>"}}
    path.write_text(json.dumps(kept))
    processors.portable_tokenizer_config(path)
    assert json.loads(path.read_text()) == kept
    processors.portable_tokenizer_config(tmp_path / "missing.json")  # nothing to rewrite: nothing happens


def test_named_special_tokens_are_also_saved_where_transformers_4_reads_them(tmp_path):
    """transformers 5 saves a tokenizer's named special tokens at the top level of its config;
    transformers 4 reads them from an ``extra_special_tokens`` mapping (transformers 5 reads both)."""
    import json

    path = tmp_path / "tokenizer_config.json"
    saved = {
        "tokenizer_class": "TokenizersBackend",
        "eos_token": "<|im_end|>",
        "image_token": "<|image|>",
        "boi_token": "<|boi|>",
        "extra_special_tokens": ["<|video|>"],
    }
    path.write_text(json.dumps(saved))
    processors.portable_tokenizer_config(path)
    assert json.loads(path.read_text()) == {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "<|im_end|>",
        "image_token": "<|image|>",
        "boi_token": "<|boi|>",
        "additional_special_tokens": ["<|video|>"],
        "extra_special_tokens": {"image_token": "<|image|>", "boi_token": "<|boi|>"},
    }


def _loads_its_own_part():
    from json import JSONDecoder as Decoder

    return Decoder, KNOWN


KNOWN = object()


def test_a_class_a_function_imports_itself_counts_as_named_by_it():
    """vLLM's multimodal processors import some image processors inside a method (``from
    transformers import Idefics3ImageProcessor``): the name is resolved through that import."""
    import json

    assert processors.named_in(_loads_its_own_part, {"KNOWN": KNOWN}) == [json.JSONDecoder, KNOWN]


class ContextTokenProcessor:
    """As vLLM's ``InternVLProcessor``: converts its default tokens to ids with the tokenizer."""

    def __init__(
        self,
        tokenizer=None,
        ctx_image_token: str = "<IMG_CONTEXT>",
        start_image_token: str = "<img>",
        pad_token: str = "<pad>",
        ctx_video_token: str | None = None,
    ):
        self.tokenizer = tokenizer


class ContextTokenInfo:
    def get_hf_processor(self):
        return ContextTokenProcessor(tokenizer=None)


def test_tokens_a_class_built_by_upstreams_processing_info_takes_by_default_are_wanted():
    """QianfanOCR's processing info builds vLLM's ``InternVLProcessor`` with its default
    ``<IMG_CONTEXT>``: a tiny tokenizer without it gave the image token id None."""
    assert processors.token_defaults(ContextTokenInfo) == ["<IMG_CONTEXT>", "<img>"]


LOOKUPS = """
def get_prompt_updates(self, tokenizer, hf_processor):
    vocab = tokenizer.get_vocab()
    video = [vocab["<|begin_of_video|>"], vocab["<|video|>"], vocab[hf_processor.image_token]]
    pad = tokenizer.convert_tokens_to_ids("<|audio_pad|>")
    image = tokenizer.get_vocab()["<image>"]
    text = "<|begin_of_video|><|video|>"  # a prompt, not a lookup
    other = {"<not_a_lookup>": 1}["<not_a_lookup>"]
    spaced = vocab["<not a token>"]
"""


def test_tokens_upstreams_code_looks_up_by_their_spelling_are_wanted():
    """GLM-OCR's processor reads ``vocab["<|begin_of_video|>"]``: a tiny tokenizer without it failed
    the control's start with a KeyError. Lookups in the vocabulary and ``convert_tokens_to_ids``
    count; a prompt's text, another mapping's keys and strings that are not token spellings do not."""
    assert processors.tokens_spelled_in(LOOKUPS) == ["<image>", "<|audio_pad|>", "<|begin_of_video|>", "<|video|>"]
    assert processors.tokens_spelled_in("def broken(:") == []
