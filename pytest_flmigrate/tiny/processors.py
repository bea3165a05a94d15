"""The processor a multimodal model's upstream vLLM code loads, made for a tiny checkpoint (runs in
the upstream env, imported by tiny/synthesize.py as a sibling; vLLM and transformers are imported
inside the functions).

vLLM builds a multimodal model's processor when it starts (its profiling feeds the processor dummy
images or audio), so a tiny checkpoint with a text tokenizer only cannot start it. ``prepare`` finds
the processor class the model uses, in this order:

1. the processor classes upstream's code names: the model's ``ProcessingInfo`` (its getters, e.g.
   ``self.ctx.get_hf_processor(GlmAsrProcessor)``, then its other methods), the model's module, the
   methods of its multimodal processor (a name imported inside a method counts), the modules of the
   parts named (vLLM keeps a processor beside its feature extractor); transformers' auto classes
   are factories and never count;
2. transformers' ``AutoProcessor`` mapping for the config's ``model_type`` (not a sub-config's:
   a tower's processor is not the model's);
   (the first of these that builds is taken)
3. without a processor class, the image processors and feature extractors the same code names,
   or transformers' auto mappings of each for the config's ``model_type``.

A processor class is built from its parts (``get_attributes``): the tiny tokenizer, and each
image/video processor or feature extractor from the class the same code names for that part, the
processor class's ``<part>_class``, transformers' auto mapping (for the config's model type, its
sub-configs', then the model types mapped to that processor class), or its own module. Each is built
with its defaults, and a required argument with the tiny config's field of its name (the config's,
a vision/audio sub-config's, one of a per-tower list ``<name>s``), else the class's attribute of
that name (``required_values``; none: ``Unbuildable`` naming them). Sizes are then aligned with the
tiny config (``align``: patch and merge sizes, image size, mel bins, taken from the vision/audio
sub-config). The special tokens a processor's constructor reads off its tokenizer
(``tokenizer.image_token``, ``self.tokenizer.audio_token_id``) are given to the tiny tokenizer as
named special tokens (``<|image|>``), as real checkpoints' tokenizers carry them; a processor whose
constructor does not call ``ProcessorMixin``'s gets the attributes that one sets
(``chat_template``). The processor's placeholder tokens (``image_token``, ``audio_token``, ...:
vLLM looks them up in the vocabulary), and the tokens the classes upstream's processing info builds
take by default (``token_defaults``: vLLM's ``InternVLProcessor``'s ``"<IMG_CONTEXT>"``), and the
tokens upstream's code looks up in the vocabulary by their spelling (``tokens_looked_up``:
``vocab["<|begin_of_video|>"]``), are added to the tiny tokenizer and the config's vocabulary
and token ids follow, before the weights are made (``prepare``); then everything is saved with
``save_pretrained`` beside the weights (``save``), values JSON cannot hold written as their JSON
spelling (a ``torch.device`` as ``"cpu"``), so that vLLM loads it the way it loads a real
checkpoint's. Text prompts are enough for the comparison; the processor only has to load and
process vLLM's dummy inputs. ``Unbuildable`` (one line) when no class is found or a part cannot be
built or saved.
"""

from __future__ import annotations

import ast
import enum
import inspect
import json
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The parts of a processor (transformers' modality names) and the base class of each.
PARTS = ("image_processor", "video_processor", "feature_extractor", "audio_processor")
#: A processor's size fields and the vision config fields they take their value from, first found.
SHARED_FIELDS = {
    "patch_size": ("patch_size",),
    "temporal_patch_size": ("temporal_patch_size",),
    "merge_size": ("merge_size", "spatial_merge_size"),
    "spatial_merge_size": ("spatial_merge_size", "merge_size"),
}
#: The most pixels a dynamic-resolution image processor may give an image (profiling runs the
#: vision tower on the largest image: a tiny tower still pays per patch).
MAX_PIXELS = 448 * 448


class Unbuildable(Exception):
    """The model's processor cannot be made: one line for the user."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _bases() -> dict[str, type]:
    from transformers import FeatureExtractionMixin, ImageProcessingMixin, ProcessorMixin
    from transformers.video_processing_utils import BaseVideoProcessor

    return {
        "processor": ProcessorMixin,
        "image_processor": ImageProcessingMixin,
        "video_processor": BaseVideoProcessor,
        "feature_extractor": FeatureExtractionMixin,
        "audio_processor": FeatureExtractionMixin,
    }


def _model_class(arch: str) -> type | None:
    from vllm.model_executor.models.registry import ModelRegistry

    try:
        return ModelRegistry._try_load_model_cls(arch)
    except Exception as exc:  # noqa: BLE001 - an import error of upstream's model module, reported as is
        raise Unbuildable(f"upstream vLLM cannot import {arch}: {_first_line(exc)}") from None


def _parsed(function: Any) -> ast.Module:
    """The source of ``function`` (a property's getter, a partial's function), parsed; empty when unreadable."""
    function = getattr(function, "fget", function)
    function = getattr(function, "func", function)
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return ast.Module(body=[], type_ignores=[])


def named_in(function: Any, scope: dict[str, Any]) -> list[Any]:
    """The values of the names ``function`` uses, sorted by name: from its own imports (``from
    transformers import X`` inside the function, imported now), else from ``scope`` (its module's)."""
    tree = _parsed(function)
    imported = {
        alias.asname or alias.name: (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and not node.level
        for alias in node.names
    }
    values = []
    for name in sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}):
        values.append(_imported(*imported[name]) if name in imported else scope.get(name))
    return values


def _imported(module: str, name: str) -> Any:
    import importlib

    try:
        return getattr(importlib.import_module(module), name, None)
    except Exception:  # noqa: BLE001 - a local import that fails here names nothing
        return None


#: The methods of a ProcessingInfo that name the processor and its parts, looked at first.
GETTERS = ("get_hf_processor", "get_feature_extractor", "get_image_processor", "get_video_processor")


def _own_classes(klass: type) -> list[type]:
    """``klass`` and its bases up to vLLM's own (``vllm.multimodal``)."""
    return [k for k in klass.__mro__ if k is not object and not k.__module__.startswith("vllm.multimodal")]


def _named_by_methods(klass: type, getters: bool | None = None) -> list[Any]:
    """What the methods of ``klass`` and its own bases name (``getters``: only ``GETTERS``, or only
    the others; None: all)."""
    named = []
    for own in _own_classes(klass):
        scope = vars(sys.modules[own.__module__])
        for member_name, member in vars(own).items():
            if getters is None or (member_name in GETTERS) is getters:
                named += named_in(member, scope)
    return named


def referenced_classes(info: type, model: type, processing: type | None = None) -> list[type]:
    """Processor-like classes (see ``_bases``) that upstream's code names: in the getters of ``info``
    (and its bases up to vLLM's own), its other methods, the model's module, the methods of its
    multimodal processor ``processing`` (an image processor it loads itself), then the modules that
    define the parts found (a processor kept beside its feature extractor). transformers' auto
    classes are factories, not a part's class, and are left out."""
    bases = tuple(_bases().values())
    found: list[type] = []

    def add(candidate: Any) -> None:
        if isinstance(candidate, type) and issubclass(candidate, bases) and candidate not in bases:
            if candidate not in found and not inspect.isabstract(candidate) and not _is_auto(candidate):
                found.append(candidate)

    for value in [*_named_by_methods(info, getters=True), *_named_by_methods(info, getters=False)]:
        add(value)
    for value in vars(sys.modules[model.__module__]).values():
        add(value)
    for value in _named_by_methods(processing) if isinstance(processing, type) else []:
        add(value)
    for part in list(found):
        for value in vars(sys.modules[part.__module__]).values():
            add(value)
    return found


def _is_auto(cls: type) -> bool:
    return cls.__module__.startswith("transformers.models.auto")


def _auto_class(mapping_module: str, mapping: str, model_types: list[str]) -> type | None:
    """transformers' class for the first of ``model_types`` in an auto mapping that has one (a
    mapping's entry is a name, names, or names by backend: torchvision's first, then PIL's)."""
    import importlib

    import transformers

    table = getattr(importlib.import_module(mapping_module), mapping)
    for model_type in model_types:
        names = table.get(model_type)
        if isinstance(names, dict):
            names = [names.get("torchvision"), names.get("pil"), *names.values()]
        for name in names if isinstance(names, tuple | list) else [names]:
            if name and hasattr(transformers, name):
                return getattr(transformers, name)
    return None


def model_types(config: Any) -> list[str]:
    """The config's ``model_type``, then its sub-configs' (a vision tower's processor is often
    mapped under the tower's type)."""
    from transformers.models.auto import configuration_auto

    module_of = getattr(configuration_auto, "SPECIAL_MODEL_TYPE_TO_MODULE_NAME", {})
    found = [getattr(config, "model_type", None)]
    for name in getattr(config, "sub_configs", None) or {}:
        kind = getattr(getattr(config, name, None), "model_type", None)
        found += [kind, module_of.get(kind)]  # a tower's type, then the model it belongs to
    return [str(kind) for kind in dict.fromkeys(found) if kind]


AUTO_MAPPINGS = {
    "processor": ("transformers.models.auto.processing_auto", "PROCESSOR_MAPPING_NAMES"),
    "image_processor": ("transformers.models.auto.image_processing_auto", "IMAGE_PROCESSOR_MAPPING_NAMES"),
    "video_processor": ("transformers.models.auto.video_processing_auto", "VIDEO_PROCESSOR_MAPPING_NAMES"),
    "feature_extractor": ("transformers.models.auto.feature_extraction_auto", "FEATURE_EXTRACTOR_MAPPING_NAMES"),
    "audio_processor": ("transformers.models.auto.feature_extraction_auto", "FEATURE_EXTRACTOR_MAPPING_NAMES"),
}


def _modality(part: str) -> str:
    return next((modality for modality in PARTS if modality in part), part)


def part_class(part: str, processor: type | None, referenced: list[type], kinds: list[str]) -> type | None:
    """The class of a processor's part: the one upstream's code names, the processor's
    ``<part>_class``, transformers' auto mapping, a class of the processor's own module."""
    modality = _modality(part)
    base = _bases()[modality]
    named = [candidate for candidate in referenced if issubclass(candidate, base)]
    if named:
        return named[0]
    if processor is not None:
        declared = getattr(processor, f"{part}_class", None)
        declared = declared[-1] if isinstance(declared, tuple | list) else declared
        if isinstance(declared, str):
            scope = vars(sys.modules[processor.__module__])
            found = scope.get(declared)
            if found is None:
                import transformers

                found = getattr(transformers, declared, None)
            if isinstance(found, type) and issubclass(found, base) and not _is_auto(found):
                return found
    auto = _auto_class(*AUTO_MAPPINGS[modality], kinds + (processor_model_types(processor) if processor else []))
    if auto is not None:
        return auto
    if processor is not None:
        own = [
            value
            for value in vars(sys.modules[processor.__module__]).values()
            if isinstance(value, type) and issubclass(value, base) and value is not base
        ]
        if own:
            return own[0]
    return None


def processor_model_types(processor: type) -> list[str]:
    """The model types transformers' ``AutoProcessor`` mapping maps to ``processor`` (a processor
    shared by several models: its parts are mapped under the model it was written for)."""
    import importlib

    table = getattr(importlib.import_module(AUTO_MAPPINGS["processor"][0]), AUTO_MAPPINGS["processor"][1])
    return [kind for kind, name in table.items() if name == processor.__name__]


def _sub_config(config: Any, *names: str) -> Any:
    for name in names:
        found = getattr(config, name, None)
        if found is not None:
            return found
    return None


def align(part: Any, config: Any) -> None:
    """Sizes of an image/video processor or feature extractor set from the tiny config's vision or
    audio sub-config (or the config itself) where both hold them; dynamic resolution capped."""
    vision = _sub_config(config, "vision_config", "vision_tower_config", "visual", "vision_model") or config
    audio = _sub_config(config, "audio_config", "audio_encoder_config", "encoder_config") or config
    for field, sources in SHARED_FIELDS.items():
        value = next((getattr(vision, name) for name in sources if isinstance(getattr(vision, name, None), int)), None)
        if value is not None and hasattr(part, field):
            setattr(part, field, value)
    image_size = getattr(vision, "image_size", None)
    size = getattr(part, "size", None)
    if isinstance(image_size, int) and isinstance(size, dict):
        part.size = {
            key: (image_size if key in ("height", "width", "shortest_edge", "longest_edge") else value)
            for key, value in size.items()
        }
    if isinstance(getattr(part, "max_pixels", None), int) and part.max_pixels > MAX_PIXELS:
        part.max_pixels = MAX_PIXELS
        if isinstance(getattr(part, "min_pixels", None), int):
            part.min_pixels = min(part.min_pixels, MAX_PIXELS)
    mel_bins = getattr(audio, "num_mel_bins", None)
    if isinstance(mel_bins, int) and hasattr(part, "feature_size"):
        part.feature_size = mel_bins


def required_arguments(cls: type) -> list[str]:
    """The parameters of ``cls``'s constructor that have no default (``*args``/``**kwargs`` not)."""
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return []
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in plain and p.default is inspect.Parameter.empty]


#: Sub-configs a processor's own arguments are looked up in, after the config itself.
ARGUMENT_SOURCES = ("vision_config", "vision_tower_config", "audio_config", "audio_encoder_config", "encoder_config")


def argument_value(cls: type, name: str, config: Any) -> tuple[bool, Any]:
    """A value for ``cls``'s required argument ``name``: the tiny config's field of that name (the
    config's own, then a vision/audio sub-config's; a field ``<name>s`` listing it per tower, its
    first), else the class's own attribute of that name (a class default); ``(False, None)`` when
    none has one."""
    scopes = [config, *(getattr(config, source, None) for source in ARGUMENT_SOURCES)]
    for scope in scopes:
        if scope is not None and not callable(getattr(scope, name, None)) and hasattr(scope, name):
            return True, getattr(scope, name)
    for scope in scopes:
        per_tower = getattr(scope, f"{name}s", None)
        if isinstance(per_tower, list | tuple) and per_tower:
            return True, per_tower[0]
    declared = inspect.getattr_static(cls, name, None)
    if declared is not None and not callable(declared) and not isinstance(declared, property):
        return True, declared
    return False, None


def required_values(cls: type, config: Any, given: dict[str, Any]) -> dict[str, Any]:
    """Values for ``cls``'s required arguments ``given`` lacks (``argument_value``); Unbuildable
    naming those that have none, which its constructor would refuse."""
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for name in required_arguments(cls):
        if name in given:
            continue
        found, value = argument_value(cls, name, config)
        if found:
            values[name] = value
        else:
            unknown.append(name)
    if unknown:
        raise Unbuildable(
            f"{cls.__name__} needs {', '.join(unknown)}, which neither the tiny config nor the class gives a value"
        )
    return values


def _build(cls: type, config: Any = None, **kwargs: Any) -> Any:
    """``cls`` built with ``kwargs`` and the required arguments the tiny config or the class values."""
    kwargs = {**required_values(cls, config, kwargs), **kwargs}
    try:
        return cls(**kwargs)
    except Exception as exc:  # noqa: BLE001 - any constructor failure, named with the class
        raise Unbuildable(f"{cls.__name__} cannot be built with its defaults: {_first_line(exc)}") from None


def build(processor: type, referenced: list[type], kinds: list[str], tokenizer: Any, config: Any) -> Any:
    """``processor`` from its parts: the tiny tokenizer, the other parts from ``part_class``."""
    parts: dict[str, Any] = {}
    for part in processor.get_attributes():  # type: ignore[attr-defined]
        if "tokenizer" in part:
            parts[part] = tokenizer
            continue
        cls = part_class(part, processor, referenced, kinds)
        if cls is None:
            raise Unbuildable(f"{processor.__name__} needs a {part} and no class for it is known")
        parts[part] = _build(cls, config)
        align(parts[part], config)
    name_special_tokens(tokenizer, tokens_read_from_tokenizer(processor), parameter_defaults(processor))
    built = _build(processor, config, **parts)
    give_mixin_defaults(built, parts, _bases()["processor"])
    return built


def give_mixin_defaults(processor: Any, parts: dict[str, Any], mixin: type) -> None:
    """The attributes ``mixin.__init__`` sets that ``processor``'s own constructor, not calling
    it, never did (``ProcessorMixin``'s ``chat_template``, which ``save_pretrained`` reads), set to
    what the mixin's constructor gives them over the same parts; left as they are when it refuses them."""
    probe = object.__new__(type(processor))
    try:
        mixin.__init__(probe, **parts)  # type: ignore[misc]
    except Exception:  # noqa: BLE001 - parts the mixin refuses: nothing to take from it
        return
    for name, value in vars(probe).items():
        if not hasattr(processor, name):
            setattr(processor, name, value)


@dataclass
class Prepared:
    """The processor (or its standalone parts) for a tiny checkpoint, before it is saved."""

    items: list[Any]
    tokens: dict[str, int]  # the processor's special tokens added to the tiny tokenizer, with their ids
    tokenizer_classes: tuple[str, ...] = ()  # the model's tokenizer class in transformers' auto mapping


def _processor_factory(arch: str) -> Any:
    """The multimodal registry's factories of upstream's class for ``arch`` (None: a text model)."""
    model = _model_class(arch)
    return getattr(model, "_processor_factory", None) if model is not None else None


def token_defaults(info: type) -> list[str]:
    """The tokens the classes upstream's processing info builds (its getters) take by default: a
    constructor parameter ``<kind>_token`` defaulting to a string (vLLM's ``InternVLProcessor``,
    built by QianfanOCR's info, converts ``ctx_image_token="<IMG_CONTEXT>"`` to its id: None with a
    tokenizer that lacks it). Real checkpoints' tokenizers hold them."""
    found: set[str] = set()
    for value in _named_by_methods(info, getters=True):
        if isinstance(value, type):
            found.update(
                default
                for name, default in parameter_defaults(value).items()
                if name.endswith("_token") and name not in STANDARD_TOKENS
            )
    return sorted(found)


def _is_vocabulary(node: ast.expr) -> bool:
    """``vocab`` or ``<anything>.get_vocab()``: the expressions a token's id is read from."""
    if isinstance(node, ast.Name):
        return node.id == "vocab"
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get_vocab"


def _spelled_token(node: ast.expr | None) -> str | None:
    """A string literal spelled as a special token (``<image>``, ``<|video|>``), else None."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return None
    text = node.value
    return text if len(text) > 2 and text.startswith("<") and text.endswith(">") and " " not in text else None


def tokens_spelled_in(source: str) -> list[str]:
    """The special tokens ``source`` reads ids of by their spelling: ``vocab["<|video|>"]``,
    ``tokenizer.get_vocab()["<image>"]``, ``tokenizer.convert_tokens_to_ids("<|audio_pad|>")``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: set[str] = set()
    for node in ast.walk(tree):
        token = None
        if isinstance(node, ast.Subscript) and _is_vocabulary(node.value):
            token = _spelled_token(node.slice)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "convert_tokens_to_ids"
            and node.args
        ):
            token = _spelled_token(node.args[0])
        if token is not None:
            found.add(token)
    return sorted(found)


def tokens_looked_up(arch: str) -> list[str]:
    """The special tokens upstream's code for ``arch`` looks up in the vocabulary by their spelling
    (``tokens_spelled_in``), in the model's module and the modules of its processing classes (and of
    their bases in vLLM's models): a real checkpoint's tokenizer has them, and a lookup of one the
    tiny tokenizer lacks is a ``KeyError`` when vLLM starts (GLM-OCR's ``<|begin_of_video|>``)."""
    model = _model_class(arch)
    factories = _processor_factory(arch)
    if model is None or factories is None:
        return []
    classes = [model, factories.info, factories.processor]
    modules = {
        klass.__module__
        for cls in classes
        for klass in getattr(cls, "__mro__", ())
        if klass.__module__.startswith("vllm.model_executor.models.")
    }
    found: set[str] = set()
    for name in sorted(modules):
        try:
            found.update(tokens_spelled_in(inspect.getsource(sys.modules[name])))
        except (OSError, TypeError, KeyError):  # no source to read: nothing spelled
            continue
    return sorted(found)


def _find(arch: str, config: Any, tokenizer: Any) -> list[Any] | None:
    """The processor ``arch`` loads, built (or its standalone parts); None for a text model."""
    model = _model_class(arch)
    factories = _processor_factory(arch)
    if model is None or factories is None:
        return None
    referenced = referenced_classes(factories.info, model, factories.processor)
    kinds = model_types(config)
    processor_base = _bases()["processor"]
    candidates = [cls for cls in referenced if issubclass(cls, processor_base)]
    auto = _auto_class(*AUTO_MAPPINGS["processor"], kinds[:1])  # a tower's processor is not the model's
    if auto is not None and auto not in candidates:
        candidates.append(auto)
    failures: list[Unbuildable] = []
    for candidate in candidates:  # the first that builds
        try:
            return [build(candidate, referenced, kinds, tokenizer, config)]
        except Unbuildable as exc:
            failures.append(exc)
    if failures:
        raise failures[0]
    parts = []
    for modality in ("image_processor", "video_processor", "feature_extractor"):
        cls = part_class(modality, None, referenced, kinds[:1])
        if cls is not None:
            parts.append(_build(cls, config))
            align(parts[-1], config)
    if not parts:
        raise Unbuildable(
            f"{arch} is multimodal in upstream vLLM ({factories.info.__name__}) and no processor class "
            f"for it is known (none named by its code, none for model_type {', '.join(kinds) or '?'} in transformers)"
        )
    return parts


def special_tokens(item: Any) -> dict[str, str]:
    """The processor's placeholder tokens: its string attributes named ``<kind>_token``."""
    return {
        name[: -len("_token")]: value
        for name, value in sorted(vars(item).items())
        if name.endswith("_token") and isinstance(value, str) and value
    }


#: The special tokens every tokenizer names (transformers' ``SPECIAL_TOKENS_ATTRIBUTES``).
STANDARD_TOKENS = frozenset(
    {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}
)


def _reads_tokenizer(node: ast.Attribute) -> bool:
    """``tokenizer.x`` or ``self.tokenizer.x``."""
    owner = node.value
    if isinstance(owner, ast.Attribute):
        return owner.attr == "tokenizer" and isinstance(owner.value, ast.Name) and owner.value.id == "self"
    return isinstance(owner, ast.Name) and owner.id == "tokenizer"


def tokens_read_from_tokenizer(processor: type) -> list[str]:
    """The model-specific special tokens ``processor``'s ``__init__`` (and its bases') reads off
    its tokenizer as attributes (``tokenizer.image_token``, ``self.tokenizer.audio_token_id``:
    ``image_token``, ``audio_token``), which real checkpoints' tokenizers carry as named special
    tokens; the standard ones (``STANDARD_TOKENS``) and ``getattr`` with a default left out."""
    found: set[str] = set()
    for klass in processor.__mro__:
        if "__init__" not in vars(klass) or klass.__module__.startswith("transformers.processing_utils"):
            continue
        for node in ast.walk(_parsed(vars(klass)["__init__"])):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and _reads_tokenizer(node):
                name = node.attr.removesuffix("_id")
                if name.endswith("_token") and name not in STANDARD_TOKENS:
                    found.add(name)
    return sorted(found)


def token_spelling(name: str) -> str:
    """The tiny tokenizer's token for the named special token ``name`` (``image_token``: ``<|image|>``)."""
    return f"<|{name.removesuffix('_token')}|>"


def parameter_defaults(cls: type) -> dict[str, str]:
    """The string defaults of ``cls``'s constructor parameters (FunASR's processor:
    ``audio_token="<|AUDIO|>"``, the spelling vLLM's dummy text for it uses)."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a builtin's: nothing to read
        return {}
    return {name: p.default for name, p in parameters.items() if isinstance(p.default, str) and p.default}


def name_special_tokens(tokenizer: Any, names: list[str], spellings: dict[str, str] | None = None) -> dict[str, str]:
    """Give ``tokenizer`` each named special token of ``names`` it lacks, as real checkpoints'
    tokenizers carry them (``tokenizer.image_token``, ``tokenizer.image_token_id``; saved in its
    config under those names): each spelled as ``spellings`` has it (the processor's own default for
    the name: a processor taking the tokenizer's token over its default would otherwise count
    another token than the one upstream's dummy text spells), else by ``token_spelling``, and added
    to the vocabulary as a special token. The names given and their tokens."""
    known = set(getattr(tokenizer, "SPECIAL_TOKENS_ATTRIBUTES", ()))
    spellings = spellings or {}
    named = {name: spellings.get(name) or token_spelling(name) for name in names if name not in known}
    if named:
        tokenizer._set_model_specific_special_tokens(special_tokens=named)
        tokenizer.add_tokens(sorted(set(named.values())), special_tokens=True)
    return named


def adapt_config(config: Any, vocab_size: int, ids: dict[str, int]) -> None:
    """The tiny config (and its sub-configs) made to agree with the extended tokenizer: every
    ``vocab_size`` that was the tiny one takes ``vocab_size``; ``<kind>_token_id`` / ``_token_index``
    take the id of the processor's ``<kind>`` token."""
    configs = [config] + [
        getattr(config, name) for name in getattr(config, "sub_configs", None) or {} if getattr(config, name, None)
    ]
    for target in configs:
        if isinstance(getattr(target, "vocab_size", None), int) and target.vocab_size < vocab_size:
            target.vocab_size = vocab_size
        for kind, token_id in ids.items():
            for field in (f"{kind}_token_id", f"{kind}_token_index"):
                if hasattr(target, field):
                    setattr(target, field, token_id)


def prepare(arch: str, config: Any, tokenizer: Any) -> Prepared | None:
    """The processor ``arch`` loads, made for the tiny checkpoint (None for a text model). The named
    special tokens its constructor reads (``build``), its placeholder tokens, the tokens of
    ``token_defaults`` and those of ``tokens_looked_up`` that the tiny tokenizer lacks are added to
    it (after the tiny vocabulary), the config's vocabulary and token ids follow (``adapt_config``),
    and the processor is built again over the extended tokenizer."""
    before = set(tokenizer.get_vocab())
    items = _find(arch, config, tokenizer)
    if items is None:
        return None
    wanted = {kind: token for item in items for kind, token in special_tokens(item).items()}
    defaults = [*token_defaults(_processor_factory(arch).info), *tokens_looked_up(arch)]
    missing = sorted({token for token in [*wanted.values(), *defaults] if token not in tokenizer.get_vocab()})
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
        items = _find(arch, config, tokenizer) or []
    vocab = tokenizer.get_vocab()
    ids = {kind: vocab[token] for kind, token in wanted.items() if token in vocab}
    adapt_config(config, len(tokenizer), ids)
    added = {token: vocab[token] for token in sorted(set(vocab) - before)}
    return Prepared(items, added, mapped_tokenizer_classes(config, items))


def mapped_tokenizer_classes(config: Any, items: list[Any]) -> tuple[str, ...]:
    """The tokenizer classes transformers' ``TOKENIZER_MAPPING_NAMES`` gives the config's
    ``model_type``, then the model types of the processors' own modules
    (``transformers.models.qwen3_vl.processing_qwen3_vl``), in that order, each once."""
    from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING_NAMES

    model_types = [getattr(config, "model_type", None)]
    for item in items:
        parts = type(item).__module__.split(".")
        if parts[:2] == ["transformers", "models"] and len(parts) > 2:
            model_types.append(parts[2])
    found: list[str] = []
    for model_type in model_types:
        names = TOKENIZER_MAPPING_NAMES.get(model_type) if model_type else None
        for name in names if isinstance(names, tuple) else (names,):
            if isinstance(name, str) and name not in PORTABLE_TOKENIZERS and name not in found:
                found.append(name)
    return tuple(found)


def save(out_dir: Path, prepared: Prepared, tokenizer: Any) -> dict[str, Any]:
    """Save the processor (and the tokenizer, extended or not) into ``out_dir``; what was saved."""
    before = {path.name for path in out_dir.iterdir()}
    for item in prepared.items:
        _save_processor(item, out_dir)
    try:
        tokenizer.save_pretrained(str(out_dir))
    except Exception as exc:  # noqa: BLE001 - any save failure, named with the class
        raise Unbuildable(f"{type(tokenizer).__name__}.save_pretrained failed: {_first_line(exc)}") from None
    portable_tokenizer_config(out_dir / "tokenizer_config.json")
    named = name_tokenizer_class(out_dir, prepared.tokenizer_classes)
    return {
        "classes": [type(item).__name__ for item in prepared.items],
        "tokens": prepared.tokens,
        "files": sorted({path.name for path in out_dir.iterdir()} - before),
        **({"tokenizer_class": named} if named else {}),
    }


def _save_processor(item: Any, out_dir: Path) -> None:
    """``item.save_pretrained``; when that fails, again with the values JSON cannot hold spelled as
    JSON (``spell_as_json``: a processor that saves as it is is saved untouched); Unbuildable with
    the last failure."""
    for attempt in range(2):
        try:
            item.save_pretrained(str(out_dir))
            return
        except Exception as exc:  # noqa: BLE001 - any save failure, named with the class
            if attempt:
                raise Unbuildable(f"{type(item).__name__}.save_pretrained failed: {_first_line(exc)}") from None
        spell_as_json(item, tuple(_bases().values()))


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def json_spelling(value: Any) -> Any:
    """``value`` as JSON can hold it: containers item by item, arrays and tensors as lists
    (``tolist``), an enum as its value, an object with ``to_dict`` as that dict, anything else as
    its string (a ``torch.device`` as ``"cpu"``, the spelling its constructor takes)."""
    if _is_json(value):
        return value
    if isinstance(value, dict):
        return {
            key if isinstance(key, str | int | float | bool) else str(key): json_spelling(v) for key, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [json_spelling(item) for item in value]
        return items if isinstance(value, list | tuple) else sorted(items, key=repr)
    if isinstance(value, enum.Enum):
        return json_spelling(value.value)
    for method in ("tolist", "to_dict"):
        if callable(getattr(value, method, None)):
            return json_spelling(getattr(value, method)())
    return str(value)


def spell_as_json(item: Any, part_types: tuple[type, ...]) -> None:
    """The attributes of ``item`` (a processor, or a part of one) that ``save_pretrained`` would
    write and JSON cannot hold, set to their JSON spelling (``json_spelling``): a processor saves
    its ``__dict__``. Its parts (instances of ``part_types``) are spelled alike; its tokenizers are
    saved by their own code and left alone."""
    for name, value in list(vars(item).items()):
        if "tokenizer" in name:
            continue
        if isinstance(value, part_types):
            spell_as_json(value, part_types)
        elif not _is_json(value):
            setattr(item, name, json_spelling(value))


#: Tokenizer classes transformers 5 saves under a name transformers 4 lacks -> the name both load
#: (transformers 5 keeps it as an alias of the same class).
PORTABLE_TOKENIZERS = {"TokenizersBackend": "PreTrainedTokenizerFast"}


def portable_tokenizer_config(path: Path) -> None:
    """Rewrite the tokenizer config at ``path`` into a form the pinned env's transformers 4 loads
    too (the tiny checkpoint is served by both envs): the tokenizer class under its 4.x name, a list
    of ``extra_special_tokens`` (transformers 5's name) as ``additional_special_tokens`` (4.x reads
    ``extra_special_tokens`` as a mapping), and the named special tokens transformers 5 saves at
    the top level (``"image_token": "<|image|>"``) also in that mapping, where 4.x reads them (and
    5 too), as checkpoints made for both carry them."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(config, dict):
        return
    portable = dict(config)
    named = portable.get("tokenizer_class")
    if isinstance(named, str) and named in PORTABLE_TOKENIZERS:
        portable["tokenizer_class"] = PORTABLE_TOKENIZERS[named]
    extra = portable.get("extra_special_tokens")
    if isinstance(extra, list):
        additional = portable.get("additional_special_tokens") or []
        portable["additional_special_tokens"] = [*additional, *(token for token in extra if token not in additional)]
        del portable["extra_special_tokens"]
    tokens = named_tokens(portable)
    if tokens:
        mapping = portable.get("extra_special_tokens")
        portable["extra_special_tokens"] = {**(mapping if isinstance(mapping, dict) else {}), **tokens}
    if portable != config:
        path.write_text(json.dumps(portable, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


#: A text the tokenizer must encode alike under the class named in its config and under its own
TOKENIZER_PROBE = "Explain why the sky is blue. 天空为什么是蓝色的？ def f(x): return x**2 <|image|>"


def name_tokenizer_class(out_dir: Path, candidates: tuple[str, ...]) -> str | None:
    """Name the saved tokenizer's class in its config as real checkpoints do: the first of
    ``candidates`` (the model's class in transformers' auto mapping) that loads the same
    ``tokenizer.json`` to the same ids and vocabulary as the class the config names. A processor of
    the pinned env's transformers 4 checks its tokenizer's class (``Qwen3VLProcessor`` wants a
    ``Qwen2Tokenizer(Fast)``: 4.x loads the fast one for the name), which a generic
    ``PreTrainedTokenizerFast`` fails. Each class is loaded by itself (``AutoTokenizer`` would
    load the model's config too); the config is left as it was when none loads alike. The class
    named, or None."""
    if not candidates:
        return None
    import transformers

    path = out_dir / "tokenizer_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        before = getattr(transformers, config.get("tokenizer_class") or "PreTrainedTokenizerFast")
        expected = before.from_pretrained(str(out_dir))
    except Exception:  # noqa: BLE001 - no tokenizer config or class to compare with: left alone
        return None
    for name in candidates:
        try:
            loaded = getattr(transformers, name).from_pretrained(str(out_dir))
            alike = loaded.encode(TOKENIZER_PROBE) == expected.encode(TOKENIZER_PROBE)
            alike = alike and loaded.get_vocab() == expected.get_vocab()
        except Exception:  # noqa: BLE001 - a class that cannot load this tokenizer: the next one
            alike = False
        if alike:
            config["tokenizer_class"] = name
            path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            return name
    return None


def named_tokens(tokenizer_config: dict[str, Any]) -> dict[str, str]:
    """The model-specific named special tokens at the top level of a saved tokenizer config."""
    return {
        key: value
        for key, value in tokenizer_config.items()
        if key.endswith("_token") and key not in STANDARD_TOKENS and isinstance(value, str)
    }
