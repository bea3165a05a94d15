"""A config inferred from what a model's upstream vLLM code reads from it (host side, libcst).

The last resort of sources.py: no config class anywhere, no checkpoint given. The unit's files
(and, without a base config, those of the other models it imports from, two hops) are read for
config reads: ``config.X``, ``self.config.X``, ``....hf_config.X``, ``config.text_config.X``, and
``getattr(config, "X", default)``; a field the code assigns itself (``self.config.X = ...``, a
draft's ``target_layer_count``) is not read from a checkpoint, and a ``config.X`` where ``config``
holds a sub-config (``config = hf_config.text_config``, a layer given ``config.vision_config``) is
that sub-config's field (usage.py follows the names). The base is the config of the model the
unit's architecture class subclasses, when that model has one (``IQuestLoopCoderForCausalLM``'s
layers are llama's -> ``LlamaConfig``), else of the first other model the unit imports from (an
MTP head's target), else transformers' ``PretrainedConfig``.

Every field read that the base does not define gets a small value by its role (``SIZE_ROLES``
and ``ROLES``: sizes as shrink.py's or by their name's end, one-layer schedule periods, the tiny
tokenizer's special ids, free ids for other token ids, norms' epsilon, activations, rope theta,
flags off); a ``getattr`` default stands except for sizes. A field with neither is valued by how
the code uses it (usage.py; ``_Valuing``, each such value listed as valued by its use): a flag
(off, or the default of the parameter it is passed to), a count (``COUNT_ROLES`` by its name, else
the size the parameter it is passed to names, ``SIZE_ROLES``, else ``COUNT``), a float, a string compared with literals, a list of one value per layer (layer
indices by their name), a dict of the keys read or a sub-config of the fields read, valued the
same way. A field read with no default, no role and no unambiguous use fails the inference with
its name (a sub-config's field as ``sub.field``). With a base, what the imported models read fills
what the base lacks where a role or a use values it, never failing (they may read a sub-config).

The result is a folder: ``config.json`` with those values and ``auto_map`` naming
``configuration_flmigrate_inferred.InferredConfig``, a subclass of the base whose ``model_type`` is
the unit's name, which makes the sub-configs objects (a ``text_config`` of the base's class, others
``PretrainedConfig``) and, over a base with a text config, keeps at the top the fields the code
reads there (such a base may move them into its text config); those fields are also filled into
the text config where it lacks them (``Inferred.fills``: vLLM builds such a model's layers with
its text config, whose ``config.X`` they read). It is reported as inferred wherever it shows.

``class_fills`` gives the other sources (a config class, a checkpoint's config) the same values for
the fields upstream's code reads that the class leaves absent or None (``fills_of`` says which),
set in the upstream env by synthesize.fill_missing and listed in the tiny model's record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import libcst as cst

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.tiny import qwen2_checkpoint, shrink, usage

if TYPE_CHECKING:
    from pytest_flmigrate.run import ModelRun

CODE_FILE = "configuration_flmigrate_inferred.py"
CLASS_NAME = "InferredConfig"
#: names (or the last attribute) that hold the model's config in vLLM model code
CONFIG_HOLDERS = {"config", "hf_config"}
#: what every transformers config has (PretrainedConfig's own attributes and methods' data)
PRETRAINED = {
    "architectures",
    "model_type",
    "is_encoder_decoder",
    "name_or_path",
    "_name_or_path",
    "output_hidden_states",
    "output_attentions",
    "return_dict",
    "chunk_size_feed_forward",
    "problem_type",
    "task_specific_params",
    "quantization_config",
    "use_return_dict",
    "num_labels",
    "id2label",
    "label2id",
    "tokenizer_class",
    "transformers_version",
    "auto_map",
    "sub_configs",
    "attribute_map",
    "base_config_key",
    "keys_to_ignore_at_inference",
}
#: a short convolution's kernel (linear attention, short-conv blocks): the usual 4
CONV_KERNEL = 4
#: sizes by the end of their name (``mm_hidden_size``, ``swa_num_key_value_heads``), for fields
#: shrink.py's tables do not name: (pattern, tiny value), first match.
SIZE_ROLES: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"(^|_)(hidden_size|embedding_size|embed_dim|d_model)$|^dim$"), shrink.HIDDEN),
    (re.compile(r"(^|_)head_dim$"), shrink.HEAD_DIM),
    (re.compile(r"(^|_)(num_key_value_heads|num_kv_heads)$"), shrink.KV_HEADS),
    (re.compile(r"(^|_)(num_attention_heads|num_heads)$"), shrink.HEADS),
    (re.compile(r"(^|_)intermediate_size$"), shrink.INTERMEDIATE),
    (re.compile(r"(^|_)(num_experts_per_tok|top_k_experts)$"), shrink.EXPERTS_PER_TOKEN),
    (re.compile(r"(^|_)expert_hidden_dim$"), shrink.MOE_INTERMEDIATE),
    (re.compile(r"(^|_)num_key_heads$"), shrink.KV_HEADS),
    (re.compile(r"(^|_)num_value_heads$"), shrink.HEADS),
    (re.compile(r"(^|_)conv_(kernel_dim|kernel_size|L_cache)$"), CONV_KERNEL),
    (re.compile(r"(^|_)num_experts$"), shrink.EXPERTS),
    (re.compile(r"(^|_)(num_hidden_layers|num_layers)$"), shrink.NUM_LAYERS),
    # a position table (an encoder's ``max_source_positions``): vLLM derives the longest sequence from it
    (re.compile(r"^max_(\w+_)?positions$|(^|_)position_embeddings$"), shrink.MAX_POSITIONS),
)
#: (pattern over the field name, value) in order; the first match gives a read field its value.
ROLES: tuple[tuple[re.Pattern[str], Any], ...] = (
    (re.compile(r"^(torch_)?dtype$"), "float32"),
    (re.compile(r"^tie_word_embeddings$"), False),
    (re.compile(r"^layer_types$"), ["full_attention"] * shrink.NUM_LAYERS),
    (re.compile(r"(^|_)(eps|epsilon)$"), 1e-6),
    (re.compile(r"(^|_)(act|activation|act_fn|hidden_act|activation_function)$"), "silu"),
    (re.compile(r"(^|_)theta$"), 10000.0),
    (re.compile(r"dropout|_drop$"), 0.0),
    (re.compile(r"^(use|is|enable|has)_|_bias$|^bias$"), False),
    (re.compile(r"^rope_parameters$"), {"rope_type": "default", "rope_theta": 10000.0}),
    (re.compile(r"^(rope_scaling|quant_config|sliding_window)$"), None),
    (re.compile(r"(^|_)(multiplier|scale|scaling)$"), 1.0),
)


#: token ids a model reads (an image or audio placeholder): free ids from the top of the tiny vocab
TOKEN_ID_SUFFIXES = ("_token_id", "_token_index")


@dataclass
class Reads:
    """The config fields a unit's code reads: required ones, and those with a default."""

    required: set[str] = field(default_factory=set)
    defaults: dict[str, Any] = field(default_factory=dict)
    nested: dict[str, set[str]] = field(default_factory=dict)  # sub-config -> its fields read
    written: set[str] = field(default_factory=set)  # fields the code sets itself (no checkpoint value)
    uses: usage.Uses = field(default_factory=usage.Uses)  # what the code does with each field (usage.py)
    bare: set[str] = field(default_factory=set)  # read without a default somewhere, a default elsewhere or not
    tested: set[str] = field(default_factory=set)  # tested for presence (``hasattr``): a switch


def config_reads(sources: list[str], signature: usage.Signature | None = None) -> Reads:
    """The fields ``sources`` read, and their uses (``signature`` describes callees defined elsewhere)."""
    reads = Reads()
    for source in sources:
        cst.parse_module(source).visit(_Collector(reads))
    reads.bare = reads.required - reads.written
    for name in reads.defaults:
        reads.required.discard(name)
    reads.required -= reads.written
    reads.uses = usage.collect(sources, signature)
    return reads


def _holds_config(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.Name):
        return node.value in CONFIG_HOLDERS
    return isinstance(node, cst.Attribute) and node.attr.value in CONFIG_HOLDERS


_NO_DEFAULT = object()


def _literal(node: cst.BaseExpression) -> Any:
    if isinstance(node, cst.Integer | cst.Float | cst.SimpleString):
        return node.evaluated_value
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[node.value]
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = _literal(node.expression)
        return -inner if isinstance(inner, int | float) else _NO_DEFAULT
    return _NO_DEFAULT


class _Collector(cst.CSTVisitor):
    def __init__(self, reads: Reads) -> None:
        self.reads = reads
        self.calls: set[int] = set()  # id() of attributes that are called (methods)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False  # ``from vllm.config.multimodal import ...`` reads no config

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.add(id(node.func))
        func = node.func
        if not (isinstance(func, cst.Name) and func.value in ("getattr", "hasattr") and len(node.args) >= 2):
            return
        name = node.args[1].value
        if not (_holds_config(node.args[0].value) and isinstance(name, cst.SimpleString)):
            return
        field_name = str(name.evaluated_value)
        if func.value == "hasattr":
            self.reads.defaults.setdefault(field_name, _NO_DEFAULT)
            self.reads.tested.add(field_name)
        elif len(node.args) >= 3:
            self.reads.defaults[field_name] = _literal(node.args[2].value)
        else:
            self.reads.required.add(field_name)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        target = node.target
        if isinstance(target, cst.Attribute) and _holds_config(target.value):
            self.reads.written.add(target.attr.value)  # ``self.config.target_layer_count = n``

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if id(node) in self.calls or node.attr.value.startswith("_"):
            return
        value = node.value
        if _holds_config(value):
            self.reads.required.add(node.attr.value)
        elif isinstance(value, cst.Attribute) and _holds_config(value.value) and id(value) not in self.calls:
            self.reads.nested.setdefault(value.attr.value, set()).add(node.attr.value)


def role_value(name: str, vocab_size: int) -> tuple[bool, Any]:
    """(known, tiny value) of a field by its role."""
    if name == "vocab_size":
        return True, vocab_size
    if name in shrink.SIZES:
        return True, shrink.SIZES[name]
    if name in shrink.AT_MOST:
        return True, shrink.AT_MOST[name]
    if name in shrink.SPECIAL_TOKEN_IDS:
        return True, {"pad": qwen2_checkpoint.ENDOFTEXT_ID, "bos": qwen2_checkpoint.ENDOFTEXT_ID}.get(
            shrink.SPECIAL_TOKEN_IDS[name], qwen2_checkpoint.IM_END_ID
        )
    if name in shrink.INIT_SCALES:
        return True, shrink.INIT_SCALES[name]
    if name in shrink.SCHEDULE_PERIODS or name in shrink.SCHEDULE_OFFSETS:
        return True, 1 if name in shrink.SCHEDULE_PERIODS else 0  # every layer of a kind, from the first
    for pattern, value in SIZE_ROLES + ROLES:
        if pattern.search(name):
            return True, value
    return False, None


def _is_size(name: str) -> bool:
    return (
        name == "vocab_size"
        or name in shrink.SIZES
        or name in shrink.AT_MOST
        or any(pattern.search(name) for pattern, _ in SIZE_ROLES)
    )


@dataclass(frozen=True)
class Base:
    module: str  # where both envs import the base config class from
    class_name: str
    fields: frozenset[str]  # what it defines (its own and its bases' members and __init__ parameters)
    text: str  # for the report


#: a count no role names (``num_blocks``, ``markov_rank``), known to be an int by its use: small,
#: even and a square (it divides the tiny widths and sizes a square grid of positions)
COUNT = 4
#: counts by a word of their name, for a field its use says is an int: (pattern, value), first match
COUNT_ROLES: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"top_?k$"), shrink.EXPERTS_PER_TOKEN),
    (re.compile(r"experts$"), shrink.EXPERTS),
    (re.compile(r"(kv|key_value)_heads$"), shrink.KV_HEADS),
    (re.compile(r"heads$"), shrink.HEADS),
    (re.compile(r"(layers|depth)$"), shrink.NUM_LAYERS),
)
#: a list of layer indices (``target_layer_ids``), by its name, when no use says what its elements are
LAYER_INDICES = re.compile(r"(^|_)(ids|indices|indexes)$")
#: a sub-config of the base's own class when the unit has a base: its text model's (an MTP head's
#: target reads the base's fields from it); other sub-configs are PretrainedConfigs of the fields read
TEXT_SUB_CONFIG = re.compile(r"^(text|language|llm)_config$")


class Inferred(NamedTuple):
    files: dict[str, str]  # the config folder's files
    missing: list[str]  # the fields nothing values (empty: the config is complete)
    by_use: list[str]  # ``field=value (the use that says so)`` for each field valued by its use
    #: ``text_config.X`` -> ``fill`` for each field valued at the top over a base with a text config:
    #: vLLM builds the layers of such a model with the text config (synthesize.fill_missing sets
    #: each where the built text config lacks it)
    fills: dict[str, dict[str, Any]] = {}


@dataclass
class _Valuing:
    """Values fields (and, by their uses, the keys and fields under them) as the module docstring says."""

    uses: usage.Uses
    free_ids: Any = field(default_factory=lambda: iter(range(qwen2_checkpoint.VOCAB_SIZE - 1, 0, -1)))
    missing: list[str] = field(default_factory=list)
    by_use: list[str] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)  # dotted field -> what gave its value

    def field(self, path: tuple[str, ...], required: bool, default: Any = _NO_DEFAULT) -> tuple[bool, Any]:
        """(valued, value) of the field at ``path``: its role, else the code's default, else its use."""
        name = path[-1]
        found, value = role_value(name, qwen2_checkpoint.VOCAB_SIZE)
        if not found and name.endswith(TOKEN_ID_SUFFIXES):
            found, value = True, next(self.free_ids)
        use = self.uses.get(path)
        given = default if default is not _NO_DEFAULT else value if found else None
        if given is False and use is not None and use.asserted:
            # ``assert config.tie_word_embeddings``, ``if not getattr(config, "x", False): raise``
            self.why[".".join(path)] = "asserted by the code"
            return True, True
        if default is not _NO_DEFAULT and not (found and _is_size(name)):
            self.why[".".join(path)] = "the code's default"
            return True, default  # the code's own default, unless a tiny size must replace it
        if found:
            self.why[".".join(path)] = "its role"
            return True, value
        if not required:
            return False, None  # read only when present (``hasattr``): absent, the code's other path
        return self.used(path)

    def used(self, path: tuple[str, ...]) -> tuple[bool, Any]:
        use = self.uses.get(path)
        kind = use.kind if use else None
        dotted = ".".join(path)
        if use is None or kind is None:
            self.missing.append(dotted)
            return False, None
        if kind == usage.AMBIGUOUS:
            self.missing.append(f"{dotted} (its uses disagree: {', '.join(sorted(use.kinds))})")
            return False, None
        if kind in (usage.DICT, usage.CONFIG):
            return self._container(path, use, kind)
        if kind == usage.LIST:
            return self._list(path)
        valued = _scalar(path[-1], use, kind)
        if valued is None:
            self.missing.append(f"{dotted} (a string no literal names)")
            return False, None
        value, why = valued
        self.by_use.append(f"{dotted}={value!r} ({why})")
        self.why[dotted] = why
        return True, value

    def _container(self, path: tuple[str, ...], use: usage.Use, kind: str) -> tuple[bool, Any]:
        if kind == usage.CONFIG and len(path) > 1:
            self.missing.append(f"{'.'.join(path)} (a sub-config inside a sub-config)")
            return False, None
        values: dict[str, Any] = {}
        complete = True
        for key, required in sorted(use.children.items()):
            if key in PRETRAINED and kind == usage.CONFIG:
                continue
            child = self.uses.get((*path, key))
            default = child.default if child is not None and child.has_default else _NO_DEFAULT
            valued, value = self.field((*path, key), required, default)
            complete = complete and (valued or not required)
            if valued:
                values[key] = value
        how = "read by key" if kind == usage.DICT else "read by attribute: a sub-config"
        if complete:
            self.by_use.append(f"{'.'.join(path)}={{{', '.join(sorted(values))}}} ({how})")
            self.why[".".join(path)] = how
        return complete, values

    def _list(self, path: tuple[str, ...]) -> tuple[bool, Any]:
        element = (*path, usage.ELEMENT)
        if LAYER_INDICES.search(path[-1]):
            values = list(range(shrink.NUM_LAYERS))  # layer indices, by the list's name: every layer
        elif element in self.uses and self.uses[element].kind not in (None, usage.AMBIGUOUS):
            valued, value = self.used(element)
            if not valued:
                return False, None
            values = [value] * shrink.NUM_LAYERS
        else:
            self.missing.append(f"{'.'.join(path)} (a list whose elements no use says)")
            return False, None
        self.by_use.append(f"{'.'.join(path)}={values!r} (iterated or indexed: one per layer)")
        self.why[".".join(path)] = "iterated or indexed: one per layer"
        return True, values


def _scalar(name: str, use: usage.Use, kind: str) -> tuple[Any, str] | None:
    """(value, why) for a scalar kind; None for a string nothing names."""
    agreed = {repr(d): d for d in use.defaults}
    default = next(iter(agreed.values())) if len(agreed) == 1 else None
    if kind == usage.BOOL:
        if isinstance(default, bool):
            return default, "a truth value: the default of the parameter it is passed to"
        return False, "a truth value: off"
    if kind in (usage.INT, usage.NUMBER):
        role = next((value for pattern, value in COUNT_ROLES if pattern.search(name)), None)
        if role is not None:
            return role, "a count, by its name"
        sized = _sized_parameter(use.params)
        return (sized[1], f"a count: the size its parameter {sized[0]} names") if sized else (COUNT, "a count")
    if kind == usage.FLOAT:
        if isinstance(default, float | int) and not isinstance(default, bool):
            return float(default), "a float: the default of the parameter it is passed to"
        return 1.0, "a float: neutral"
    if use.literals:
        if isinstance(default, str) and default in use.literals:
            return default, f"compared with {', '.join(map(repr, use.literals))}: the parameter's default"
        return use.literals[0], f"compared with {', '.join(map(repr, use.literals))}: the first"
    if isinstance(default, str):
        return default, "a string: the default of the parameter it is passed to"
    return None


def _sized_parameter(params: list[str]) -> tuple[str, int] | None:
    """The first of ``params`` whose name is a size's (``dim`` -> the hidden size), with that size."""
    for param in params:
        size = next((value for pattern, value in SIZE_ROLES if pattern.search(param)), None)
        if size is not None:
            return param, size
    return None


def inferred_config(
    model_type: str, arch: str, reads: Reads, base: Base | None, module: str, borrowed: Reads | None = None
) -> Inferred:
    """The config folder's files, the fields nothing values, and those valued by their use.
    ``borrowed``: what the models the unit imports read, valued where the base lacks it and a
    role or a use values it (never missing: they may read a sub-config the base has)."""
    known = PRETRAINED | (base.fields if base else frozenset())
    values: dict[str, Any] = {}
    valuing = _Valuing(reads.uses)
    sub_configs: dict[str, str] = {}
    top = reads.uses.get((), usage.Use()).children
    for name in sorted(reads.required | set(reads.defaults)):
        if name in known or (name in reads.required and name not in top):
            continue  # the base's; or read only through a name holding a sub-config: valued there
        valued, value = valuing.field((name,), name in reads.required, reads.defaults.get(name, _NO_DEFAULT))
        if valued:
            values[name] = value
            use = reads.uses.get((name,))
            if use is not None and use.kind == usage.CONFIG and isinstance(value, dict):
                sub_configs[name] = "Base" if base and TEXT_SUB_CONFIG.match(name) else "PretrainedConfig"
    if borrowed is not None:
        lender = _Valuing(borrowed.uses, valuing.free_ids)
        lent = borrowed.uses.get((), usage.Use()).children
        for name in sorted(borrowed.required & set(lent) - known - set(values) - set(borrowed.nested)):
            valued, value = lender.field((name,), True)
            if valued and not isinstance(value, dict | list):
                values[name] = value
        valuing.by_use += [line for line in lender.by_use if line.split("=")[0] in values]
    # a composite base may move flat fields into its text config (transformers 5's Qwen2_5_VLConfig
    # does with ``hidden_size``): the fields the code reads at the top are put back there, as the
    # text config has them (the reads are the text model's; a role's guess at the top would
    # contradict it: all-``full_attention`` ``layer_types`` over a hybrid text config make vLLM
    # take the model for a pure attention one)
    kept = sorted(values) if base and "text_config" in base.fields else []
    code = _code(model_type, module, base, sub_configs, kept, valuing.by_use)
    config = {
        **values,
        "architectures": [arch],
        "auto_map": {"AutoConfig": f"{CODE_FILE.removesuffix('.py')}.{CLASS_NAME}"},
        "model_type": model_type,
    }
    files = {CODE_FILE: code, "config.json": json.dumps(config, indent=2, sort_keys=True) + "\n"}
    fills = {
        f"text_config.{name}": fill(values[name], "read at the top, kept in the text config")
        for name in kept
        if name not in sub_configs
    }
    return Inferred(files, valuing.missing, valuing.by_use, fills)


def _code(
    model_type: str, module: str, base: Base | None, sub_configs: dict[str, str], kept: list[str], by_use: list[str]
) -> str:
    """The config module: the base subclassed under the unit's model type; with sub-configs the code
    reads by attribute, or fields to keep at the top (``kept``), a constructor that makes the
    sub-configs objects of their class from config.json's dicts and puts back a kept field the base
    moved away (the text config's value where it has one). Without either, no constructor: a transformers 5 config class validates a subclass
    that defines one differently (its per-layer lists against the base's default layer count)."""
    base_import = (
        f"from {base.module} import {base.class_name} as Base"
        if base
        else "from transformers import PretrainedConfig as Base"
    )
    used = "".join(f"  {line}\n" for line in by_use)
    code = (
        f'"""A config inferred by pytest-flmigrate from what upstream vLLM\'s {module} reads from its config\n'
        f"(no config class or checkpoint to take it from): a guess with small values, not a real config."
        + (f"\n\nValued by their use in the code:\n{used}" if by_use else "")
        + '"""\n\n'
        f"{base_import}\n"
    )
    if not sub_configs and not kept:
        return code + f"\n\nclass {CLASS_NAME}(Base):\n    model_type = {model_type!r}\n"
    entries = "".join(f"    {name!r}: {cls},\n" for name, cls in sorted(sub_configs.items()))
    return (
        code
        + "from transformers import PretrainedConfig\n\n"
        + "#: the fields the model's code reads from the config itself, kept there whatever the base does\n"
        + f"KEPT = {tuple(kept)!r}\n"
        + "#: the sub-configs the model's code reads by attribute, made objects from config.json's dicts\n"
        + (f"SUB_CONFIGS = {{\n{entries}}}\n" if sub_configs else "SUB_CONFIGS = {}\n")
        + f"\n\nclass {CLASS_NAME}(Base):\n"
        f"    model_type = {model_type!r}\n\n"
        "    def __init__(self, **kwargs):\n"
        "        for name, cls in SUB_CONFIGS.items():\n"
        "            if isinstance(kwargs.get(name), dict):\n"
        "                kwargs[name] = cls(**kwargs[name])\n"
        "        kept = {name: kwargs[name] for name in KEPT if name in kwargs}\n"
        "        super().__init__(**kwargs)\n"
        "        text = getattr(self, 'text_config', None)\n"
        "        for name, value in kept.items():\n"
        "            if text is not None and hasattr(text, name):\n"
        "                setattr(self, name, getattr(text, name))  # the text model's code read it\n"
        "            elif not hasattr(self, name):\n"
        "                setattr(self, name, value)\n"
    )


def fill(
    value: Any, why: str, *, absent: bool = True, none: bool = False, config: bool = False, falsy: bool = False
) -> dict[str, Any]:
    """One field a config may lack, as synthesize.fill_missing takes it: its value and what gave it,
    whether it is set where the config lacks it (``absent``) or leaves it None (``none``) or false
    (``falsy``: upstream's code asserts it), and whether it is a sub-config read by attribute
    (``config``: made an object where it is absent, None or a plain dict, its dict's values kept)."""
    entry = {"value": value, "why": why, "absent": absent, "none": none, "config": config}
    # ``falsy`` only where set: the fills a tiny model was asked for name its cache folder
    return {**entry, "falsy": True} if falsy else entry


def class_fills(run: ModelRun) -> dict[str, dict[str, Any]]:
    """Dotted field -> ``fill`` for each field upstream's code for the unit reads (its files, the
    models they import, the layer modules they give the config, the models of its sub-configs):
    what a config class's defaults leave absent or None gets
    the value an inferred config would give it (``fills_of``), as a real checkpoint's ``config.json``
    would set it."""
    root = run.workspace.upstream().root
    own = [root / relative for relative in run.unit().files]
    others = imported_model_files(run) + imported_layer_files(run) + sub_config_model_files(run)
    paths = own + [path for path in dict.fromkeys(others) if path not in own]
    return fills_of(config_reads([path.read_text(encoding="utf-8") for path in paths], signatures(run, paths)))


def fills_of(reads: Reads) -> dict[str, dict[str, Any]]:
    """``fill``s for the fields of ``reads`` (top-level ones, and those of the sub-configs the code
    reads by attribute), valued as an inferred config's (``_Valuing``: role, the code's default, use).
    A field read without a default is set where absent; a None is replaced only where no use takes
    None as a value (usage.py's ``optional``) and a use says its kind (a truth test alone is served
    by None); a field read with a default replaces only a None, by that default when it is not None.
    A field read without a default anywhere counts as read so, whatever other reads give it. A field
    the code tests for presence (``hasattr``) gets none (``hasattr(config, "index_topk")`` switches
    DeepSeek V3.2's sparse attention on: absent is a path of the code's own), nor one only read with
    a default it computes (``getattr(config, "x", config.vocab_size)``). Fields nothing values get no
    fill: upstream's code fails on them naming them."""
    valuing = _Valuing(reads.uses)
    fills: dict[str, dict[str, Any]] = {}
    for name in sorted((reads.bare | set(reads.defaults)) - PRETRAINED - reads.written - reads.tested):
        default = _NO_DEFAULT if name in reads.bare else reads.defaults[name]
        if name in reads.bare or default is not _NO_DEFAULT:
            _add_fill(fills, valuing, (name,), default)
    for path, use in sorted(reads.uses.items()):
        if len(path) != 1 or use.kind != usage.CONFIG or path[0] in PRETRAINED:
            continue
        for child, required in sorted(use.children.items()):
            found = reads.uses.get((*path, child))
            default = found.default if found is not None and found.has_default else _NO_DEFAULT
            if child not in PRETRAINED and (required or default is not _NO_DEFAULT):
                _add_fill(fills, valuing, (*path, child), default)
    return fills


def _add_fill(fills: dict[str, dict[str, Any]], valuing: _Valuing, path: tuple[str, ...], default: Any) -> None:
    dotted = ".".join(path)
    use = valuing.uses.get(path)
    optional = use is not None and use.optional
    if default is not _NO_DEFAULT:
        if default is False and use is not None and use.asserted:
            _, value = valuing.field(path, False, default)  # True: the code's default fails it
            fills[dotted] = fill(value, valuing.why[dotted], none=True, falsy=True)
            return
        if default is None or optional:
            return  # absent or None, the code takes its own default
        _, value = valuing.field(path, False, default)
        fills[dotted] = fill(value, valuing.why[dotted], absent=False, none=True)
        return
    kind = use.kind if use is not None else None
    if kind == usage.CONFIG:
        valuing.field(path, True)  # its fields get fills of their own
        fills[dotted] = fill({}, "read by attribute: a sub-config", none=not optional, config=True)
        return
    valued, value = valuing.field(path, True)
    if valued and use is not None and use.asserted and value:
        fills[dotted] = fill(value, valuing.why[dotted], none=True, falsy=True)  # a None or false fails the assert
    elif valued:
        replaces = value is not None and not optional and kind not in (None, usage.BOOL, usage.AMBIGUOUS)
        fills[dotted] = fill(value, valuing.why[dotted], none=replaces)


def signatures(run: ModelRun, paths: list[Path]) -> usage.Signature:
    """usage.py's view of the callees the files at ``paths`` import (``FusedMoE``, another model's
    layer): a dotted name's parameters as upstream's index has them, found through the files'
    imports; None for a name no file imports or the index does not have."""
    from pytest_flmigrate.index.records import KEYWORD_ONLY, VAR_KEYWORD, VAR_POSITIONAL
    from pytest_flmigrate.index.resolve import Resolver

    index = run.workspace.upstream_index()
    by_path = {str(Path(index.root) / info.path): name for name, info in index.modules.items()}
    modules = [by_path[str(path)] for path in paths if str(path) in by_path]
    resolver = Resolver([index])
    found: dict[str, list[tuple[str, str | None, str | None, bool]] | None] = {}

    def signature(dotted: str) -> list[tuple[str, str | None, str | None, bool]] | None:
        if dotted not in found:
            found[dotted] = None
            head, _, rest = dotted.partition(".")
            for module in modules:
                reference = index.modules[module].imports.get(head)
                if reference is None or rest or ":" not in reference:
                    continue  # not imported here, an attribute of it, or a module (``import torch``)
                symbol = resolver.resolve(*reference.split(":", 1))
                if symbol is None:
                    continue
                info = resolver.function_of(symbol)
                if symbol.kind == "class":
                    member = resolver.constructor(symbol.module, symbol.name)[0]
                    info = member.function if member is not None else None
                if info is not None:
                    params = [p for p in info.params if p.kind not in (VAR_POSITIONAL, VAR_KEYWORD)]
                    if params and params[0].name in ("self", "cls") and symbol.kind == "class":
                        params = params[1:]
                    found[dotted] = [(p.name, p.annotation, p.default, p.kind != KEYWORD_ONLY) for p in params]
                    break
        return found[dotted]

    return signature


def imported_model_files(run: ModelRun, depth: int = 2) -> list[Path]:
    """The files of the other model modules the unit imports from, and those they import in turn
    (``depth`` hops: their layers read the config too: ``bailing_moe_mtp`` builds
    ``bailing_moe_linear``'s layers, which build ``bailing_moe``'s, which read ``use_bias``). With a
    base config they only fill what it lacks (sources.inferred_source): a module the unit imports
    may take a sub-config as its ``config`` (qwen3_5's layers read the text config's fields)."""
    index = run.workspace.upstream_index()
    unit = run.unit()
    found: list[Path] = []
    pending = [m for m in index.modules if m == unit.module or m.startswith(unit.module + ".")]
    seen = set(pending)
    for _ in range(depth):
        following: list[str] = []
        for module in pending:
            for reference in index.modules[module].imports.values():
                imported = reference.partition(":")[0]
                owner = _model_of(imported)
                info = index.modules.get(imported)
                if owner is None or owner == unit.name or info is None or imported in seen:
                    continue
                seen.add(imported)
                following.append(imported)
                found.append(Path(index.root) / info.path)
        pending = following
    return found


#: the modules of upstream's layers, some of whose classes take a model's config (``...layers.mamba.gdn``'s
#: linear attention reads ``output_gate_type``)
LAYER_PACKAGE = "vllm.model_executor.layers."


def imported_layer_files(run: ModelRun) -> list[Path]:
    """The files of the layer modules (``LAYER_PACKAGE``) whose classes or functions the unit's
    modules call with the model's config (usage.config_callees): those read its fields too. A layer
    module that never gets it (``linear.py``, whose ``config`` is vLLM's own) is not read."""
    index = run.workspace.upstream_index()
    unit = run.unit()
    modules = [m for m in index.modules if m == unit.module or m.startswith(unit.module + ".")]
    found: list[Path] = []
    for module in modules:
        info = index.modules[module]
        source = (Path(index.root) / info.path).read_text(encoding="utf-8")
        for name in sorted(usage.config_callees(source)):
            imported = info.imports.get(name, "").partition(":")[0]
            layer = index.modules.get(imported) if imported.startswith(LAYER_PACKAGE) else None
            if layer is not None and Path(index.root) / layer.path not in found:
                found.append(Path(index.root) / layer.path)
    return found


def sub_config_model_files(run: ModelRun) -> list[Path]:
    """The files of the upstream models whose configs the unit's config class makes its sub-configs
    of (``CONFIG_MAPPING["lfm2"]()`` in ``Lfm2VlConfig``'s module): vLLM builds such a language model
    with the classes its text config's architecture names at run time, which the unit's files do
    not import."""
    config = run.unit().config
    if config is None or config.origin not in ("vllm", "transformers"):
        return []
    index = run.workspace.upstream_index() if config.origin == "vllm" else run.workspace.upstream_transformers_index()
    info = index.modules.get(config.module)
    if info is None:
        return []
    upstream = run.workspace.upstream_index()
    found: list[Path] = []
    for model_type in usage.mapped_model_types((Path(index.root) / info.path).read_text(encoding="utf-8")):
        module = upstream.modules.get(f"vllm.model_executor.models.{model_type}")
        if module is not None and not module.is_package:
            found.append(Path(upstream.root) / module.path)
    return found


def base_config(run: ModelRun, depth: int = 3) -> Base | None:
    """The config of the model the unit's architecture classes subclass (following bases up to
    ``depth`` models), else of the first other model it imports from; an upstream class only."""
    index = run.workspace.upstream_index()
    pending = [(arch.dotted_module, arch.class_name) for arch in run.unit().architectures]
    return _subclassed(run, index, pending, depth) or _imported(run, index)


def _subclassed(run: ModelRun, index: Any, pending: list[tuple[str, str]], depth: int) -> Base | None:
    from pytest_flmigrate.steps import discover

    unit = run.unit()
    seen: set[tuple[str, str]] = set()
    for _ in range(depth):
        following: list[tuple[str, str]] = []
        for module, class_name in pending:
            if (module, class_name) in seen or module not in index.modules:
                continue
            seen.add((module, class_name))
            info = index.modules[module].classes.get(class_name)
            for reference in info.bases if info else ():
                base_module, _, base_class = reference.partition(":")
                owner = _model_of(base_module)
                if owner is None or owner == unit.name:
                    following.append((base_module, base_class))
                    continue
                try:
                    config = run.workspace.run_for(owner).unit().config
                except FlmigrateError:
                    config = None
                if config is not None and config.origin != discover.NEWER_TRANSFORMERS:
                    return _base(run, config.module, config.class_name, config.origin, owner)
                following.append((base_module, base_class))
        pending = following
    return None


def _imported(run: ModelRun, index: Any) -> Base | None:
    """The config of the first other model the unit imports from (an MTP head imports its
    target model's layers: ``glm_ocr_mtp`` -> ``glm_ocr``)."""
    from pytest_flmigrate.steps import discover

    for owner in imported_models(run, index):
        try:
            config = run.workspace.run_for(owner).unit().config
        except FlmigrateError:
            continue
        if config is not None and config.origin != discover.NEWER_TRANSFORMERS:
            return _base(run, config.module, config.class_name, config.origin, owner)
    return None


def imported_models(run: ModelRun, index: Any) -> Iterator[str]:
    """The other model units the unit's modules import from, each once, in the order imported."""
    unit = run.unit()
    modules = [m for m in index.modules if m == unit.module or m.startswith(unit.module + ".")]
    seen = {unit.name}
    for module in modules:
        for reference in index.modules[module].imports.values():
            owner = _model_of(reference.partition(":")[0])
            if owner is not None and owner not in seen:
                seen.add(owner)
                yield owner


def _model_of(module: str) -> str | None:
    """The model unit a module belongs to (``vllm.model_executor.models.llama`` -> ``llama``)."""
    for prefix in ("vllm.model_executor.models.", "vllm.models."):
        if module.startswith(prefix):
            return module[len(prefix) :].split(".")[0]
    return None


def _base(run: ModelRun, module: str, class_name: str, origin: str, owner: str) -> Base:
    index = run.workspace.upstream_index() if origin == "vllm" else run.workspace.upstream_transformers_index()
    return Base(module, class_name, frozenset(_members(index, module, class_name)), f"{class_name} ({owner}'s)")


def _members(index: Any, module: str, class_name: str, depth: int = 6) -> set[str]:
    """Members and ``__init__`` parameters of a config class and its bases within ``index``."""
    found: set[str] = set()
    info = index.modules[module].classes.get(class_name) if module in index.modules else None
    if info is None or depth == 0:
        return found
    found |= set(info.attributes) | set(info.instance_attributes) | {f.name for f in info.fields}
    init = info.methods.get("__init__")
    if init is not None:
        found |= {param.name for param in init.params}
    for reference in info.bases:
        base_module, _, base_class = reference.partition(":")
        found |= _members(index, base_module, base_class, depth - 1)
    return found
