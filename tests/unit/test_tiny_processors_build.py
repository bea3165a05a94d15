"""tiny/processors.py's building and saving of a processor, on stand-ins for transformers' mixins
(the real classes run in the upstream env: tests/runtime/test_tiny_processors.py): the named
special tokens a processor reads off its tokenizer, the mixin's attributes a processor's own
constructor never sets, required arguments valued from the tiny config, values JSON cannot hold,
and a processor that still cannot be saved, in one line, leaving no tiny checkpoint behind."""

from __future__ import annotations

import enum
import json
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.tiny import checkpoints, processors, sources


class FakeMixin:
    """transformers' ``ProcessorMixin``, as far as the processor code here reads it."""

    def __init__(self, *args: Any, **parts: Any) -> None:
        self.chat_template = parts.pop("chat_template", None)
        for name, part in parts.items():
            setattr(self, name, part)

    def save_pretrained(self, folder: str) -> None:
        saved = {name: value for name, value in vars(self).items() if "tokenizer" not in name}
        saved = {name: vars(v) if isinstance(v, FakePart) else v for name, v in saved.items()}
        saved["chat_template"] = self.chat_template  # what transformers' save reads
        (Path(folder) / "processor_config.json").write_text(json.dumps(saved))


class FakePart:
    """An image processor or feature extractor."""


class FakeTokenizer:
    """The tokenizer API tiny/processors.py uses, with transformers 5's named special tokens."""

    SPECIAL_TOKENS_ATTRIBUTES = ["bos_token", "eos_token"]

    def __init__(self) -> None:
        self.vocab = {"<|endoftext|>": 0, "hello": 1}
        self.named: dict[str, str] = {"eos_token": "<|endoftext|>"}

    def __getattr__(self, name: str) -> Any:
        base = name.removesuffix("_id")
        if base in self.__dict__.get("named", {}):
            return self.named[base] if base == name else self.vocab[self.named[base]]
        raise AttributeError(f"FakeTokenizer has no attribute {name}")

    def _set_model_specific_special_tokens(self, special_tokens: dict[str, str]) -> None:
        self.SPECIAL_TOKENS_ATTRIBUTES = [*self.SPECIAL_TOKENS_ATTRIBUTES, *special_tokens]
        self.named.update(special_tokens)

    def add_tokens(self, tokens: list[str], special_tokens: bool = False) -> int:
        for token in tokens:
            self.vocab.setdefault(token, len(self.vocab))
        return len(tokens)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def save_pretrained(self, folder: str) -> None:
        (Path(folder) / "tokenizer_config.json").write_text(json.dumps(self.named))


class ReadsItsTokenizer(FakeMixin):
    """A processor reading model-specific special tokens off its tokenizer, as Gemma 4's does, and
    (like vLLM's Isaac processor) never calling the mixin's constructor."""

    def __init__(self, tokenizer: Any, image_seq_length: int = 4) -> None:
        self.tokenizer = tokenizer
        self.image_token_id = tokenizer.image_token_id
        self.boi_token = tokenizer.boi_token
        self.audio_token = self.tokenizer.audio_token
        self.eos = tokenizer.eos_token
        self.video_token = getattr(tokenizer, "video_token", None)  # optional: left alone

    @classmethod
    def get_attributes(cls) -> list[str]:
        return ["tokenizer"]


@pytest.fixture
def fake_mixins(monkeypatch):
    bases = {"processor": FakeMixin, **dict.fromkeys(processors.PARTS, FakePart)}
    monkeypatch.setattr(processors, "_bases", lambda: bases)
    return bases


def test_the_special_tokens_a_processor_reads_off_its_tokenizer_are_found_in_its_code():
    assert processors.tokens_read_from_tokenizer(ReadsItsTokenizer) == ["audio_token", "boi_token", "image_token"]


def test_the_tiny_tokenizer_carries_them_as_named_special_tokens_and_the_processor_builds(fake_mixins):
    tokenizer = FakeTokenizer()
    built = processors.build(ReadsItsTokenizer, [], [], tokenizer, SimpleNamespace())
    assert tokenizer.named["image_token"] == "<|image|>" and tokenizer.image_token_id == tokenizer.vocab["<|image|>"]
    assert (built.image_token_id, built.boi_token, built.audio_token) == (
        tokenizer.vocab["<|image|>"],
        "<|boi|>",
        "<|audio|>",
    )
    assert built.eos == "<|endoftext|>" and built.video_token is None  # standard and optional: untouched
    assert processors.name_special_tokens(tokenizer, ["image_token"]) == {}  # named once


class DefaultsItsToken(ReadsItsTokenizer):
    """FunASR's processor: the tokenizer's ``audio_token`` wins over its default, which vLLM's dummy
    text spells."""

    def __init__(self, tokenizer: Any, audio_token: str = "<|AUDIO|>") -> None:
        self.audio_token = tokenizer.audio_token if hasattr(tokenizer, "audio_token") else audio_token


def test_a_named_token_takes_the_spelling_the_processor_defaults_to(fake_mixins, monkeypatch):
    monkeypatch.setattr(processors, "tokens_read_from_tokenizer", lambda processor: ["audio_token"])
    tokenizer = FakeTokenizer()
    built = processors.build(DefaultsItsToken, [], [], tokenizer, SimpleNamespace())
    assert built.audio_token == tokenizer.named["audio_token"] == "<|AUDIO|>" and "<|AUDIO|>" in tokenizer.vocab


def test_without_those_tokens_the_processor_cannot_be_built(fake_mixins, monkeypatch):
    monkeypatch.setattr(processors, "tokens_read_from_tokenizer", lambda processor: [])
    with pytest.raises(processors.Unbuildable, match="^ReadsItsTokenizer cannot be built with its defaults: "):
        processors.build(ReadsItsTokenizer, [], [], FakeTokenizer(), SimpleNamespace())


def test_what_the_mixin_sets_and_the_processors_constructor_never_did_is_given_before_saving(fake_mixins, tmp_path):
    built = processors.build(ReadsItsTokenizer, [], [], FakeTokenizer(), SimpleNamespace())
    assert built.chat_template is None
    processors.save(tmp_path, processors.Prepared([built], {}), built.tokenizer)
    assert json.loads((tmp_path / "processor_config.json").read_text())["chat_template"] is None


def test_without_the_mixins_attributes_saving_fails_in_one_line(fake_mixins, monkeypatch, tmp_path):
    monkeypatch.setattr(processors, "give_mixin_defaults", lambda *args: None)
    built = processors.build(ReadsItsTokenizer, [], [], FakeTokenizer(), SimpleNamespace())
    with pytest.raises(processors.Unbuildable) as caught:
        processors.save(tmp_path, processors.Prepared([built], {}), built.tokenizer)
    assert str(caught.value) == (
        "ReadsItsTokenizer.save_pretrained failed: AttributeError: "
        "'ReadsItsTokenizer' object has no attribute 'chat_template'"
    )


class Device:
    """An object JSON cannot hold, spelled by its string (as ``torch.device``)."""

    def __str__(self) -> str:
        return "cpu"


class Window(enum.Enum):
    HANN = "hann"


class FeatureExtractor(FakePart):
    def __init__(self) -> None:
        self.feature_size = 64
        self._device = Device()
        self._fb_config = {"window": Window.HANN, "device": Device(), "sizes": (1, 2)}


class WithFeatureExtractor(FakeMixin):
    def __init__(self, feature_extractor: Any, tokenizer: Any) -> None:
        super().__init__(feature_extractor=feature_extractor, tokenizer=tokenizer)
        self.tokenizer_state = object()  # a tokenizer's: saved by its own code, left alone


def test_values_json_cannot_hold_are_saved_as_their_json_spelling(fake_mixins, tmp_path):
    processor = WithFeatureExtractor(FeatureExtractor(), FakeTokenizer())
    state = processor.tokenizer_state
    processors.save(tmp_path, processors.Prepared([processor], {}), processor.tokenizer)
    saved = json.loads((tmp_path / "processor_config.json").read_text())["feature_extractor"]
    assert saved == {
        "feature_size": 64,
        "_device": "cpu",
        "_fb_config": {"window": "hann", "device": "cpu", "sizes": [1, 2]},
    }
    assert processor.tokenizer_state is state


def test_without_the_json_spelling_saving_fails_in_one_line(fake_mixins, monkeypatch, tmp_path):
    monkeypatch.setattr(processors, "spell_as_json", lambda *args: None)
    processor = WithFeatureExtractor(FeatureExtractor(), FakeTokenizer())
    with pytest.raises(processors.Unbuildable) as caught:
        processors.save(tmp_path, processors.Prepared([processor], {}), processor.tokenizer)
    assert str(caught.value) == (
        "WithFeatureExtractor.save_pretrained failed: TypeError: Object of type Device is not JSON serializable"
    )


class SizedByItsModel(FakePart):
    """An image processor whose sizes only a checkpoint gives (vLLM's InternVL one)."""

    resample = 3

    def __init__(self, image_size: int, *, use_thumbnail: bool, resample: int, scale: float = 1.0) -> None:
        self.image_size, self.use_thumbnail, self.resample, self.scale = image_size, use_thumbnail, resample, scale


def test_required_arguments_are_valued_from_the_tiny_config_then_the_class():
    config = SimpleNamespace(use_thumbnail=True, vision_config=SimpleNamespace(image_size=64), image_size=None)
    config.image_size = None  # the config's own field comes first, even when None
    assert processors.required_values(SizedByItsModel, config, {}) == {
        "image_size": None,
        "use_thumbnail": True,
        "resample": 3,
    }
    config = SimpleNamespace(use_thumbnail=False, vision_config=SimpleNamespace(image_size=64))
    built = processors._build(SizedByItsModel, config)
    assert (built.image_size, built.use_thumbnail, built.resample, built.scale) == (64, False, 3, 1.0)
    per_tower = SimpleNamespace(use_thumbnail=False, image_sizes=[224, 336])  # one per vision backbone
    assert processors.required_values(SizedByItsModel, per_tower, {})["image_size"] == 224


def test_without_those_values_the_part_cannot_be_built(monkeypatch):
    monkeypatch.setattr(processors, "required_values", lambda cls, config, given: {})
    config = SimpleNamespace(use_thumbnail=False, vision_config=SimpleNamespace(image_size=64))
    with pytest.raises(processors.Unbuildable, match="^SizedByItsModel cannot be built with its defaults: TypeError"):
        processors._build(SizedByItsModel, config)


def test_a_required_argument_nothing_values_is_one_line_naming_the_class_and_the_arguments():
    with pytest.raises(processors.Unbuildable) as caught:
        processors._build(SizedByItsModel, SimpleNamespace())
    assert str(caught.value) == (
        "SizedByItsModel needs image_size, use_thumbnail, which neither the tiny config nor the class gives a value"
    )


def test_a_processor_that_cannot_be_saved_fails_in_one_line_and_leaves_no_tiny_checkpoint(tmp_path):
    """synthesize.py's order: the config, weights and tokenizer are written, then the processor is
    saved; a save that fails half-way (a file written, then an error) is one line, and the tiny
    cache holds no checkpoint of it."""
    script = tmp_path / "python"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import json, sys
            from pathlib import Path
            sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
            from pytest_flmigrate.tiny import processors
            class Unsaveable:
                def save_pretrained(self, folder):
                    (Path(folder) / "processor_config.json").write_text("{{")
                    raise OSError("disk full")
            class Tokenizer:
                def save_pretrained(self, folder):
                    raise AssertionError("never reached")
            processors._bases = lambda: {{"processor": Unsaveable}}
            out = Path(sys.argv[2])
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text("{{}}")
            (out / "model.safetensors").write_bytes(b"weights")
            try:
                processors.save(out, processors.Prepared([Unsaveable()], {{}}), Tokenizer())
            except processors.Unbuildable as exc:
                print(f"error: no processor for XForConditionalGeneration: {{exc}}", file=sys.stderr)
                sys.exit(2)
            """
        )
    )
    script.chmod(0o755)
    source = sources.ConfigSource(sources.UPSTREAM, "upstream: m.XConfig", "m", "XConfig")
    with pytest.raises(FlmigrateError) as caught:
        checkpoints.synthesize(
            str(script), "x", "0.32.0", "XForConditionalGeneration", source, cache=tmp_path / "cache", multimodal=True
        )
    assert caught.value.message == (
        "--tiny: cannot synthesize a tiny XForConditionalGeneration: no processor for XForConditionalGeneration: "
        "Unsaveable.save_pretrained failed: OSError: disk full"
    )
    assert [path.name for path in (tmp_path / "cache" / "tiny").iterdir() if not path.name.endswith(".lock")] == []
