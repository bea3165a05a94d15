"""Synthesize a tiny model for an architecture, in the upstream env (torch and transformers there).

Run it as a script with the upstream env's python (tiny/checkpoints.py does), never import it
into the tool's process for work: the heavy imports are inside the functions. ::

    python path/to/synthesize.py OUT_DIR --arch Cohere2MoeForCausalLM \\
        (--config-module transformers.models.cohere2_moe.configuration_cohere2_moe \\
         --config-class Cohere2MoeConfig | --config-dir DIR) [--source TEXT] [--seed 0] [--multimodal]

The config is either a config class's defaults (``--config-module``/``--config-class``: upstream
vLLM's or its transformers') or what ``AutoConfig`` loads from ``DIR`` with ``trust_remote_code``
(a ``config.json`` and the ``*.py`` it names in ``auto_map``: a newer transformers' config module,
a checkpoint's own code, an inferred config); it is shrunk by shrink.py's rules (vocab = the tiny
tokenizer's), with ``architectures = [ARCH]`` and the fields of ``--fill`` set where the config leaves
them absent or None (what upstream's code reads that the class does not set, valued by tiny/infer.py
as an inferred config's; the stamp's ``filled_fields`` lists them). A ``DIR`` config's code files are shipped in the
tiny checkpoint and its ``config.json`` keeps ``auto_map`` ``AutoConfig`` only, so that any env
loads it with ``--trust-remote-code`` whatever its transformers. The weights: when upstream
transformers (or DIR's own code, through ``auto_map``) has a class named ARCH, it is built from
that config under a fixed seed and saved with ``save_pretrained`` (float32 safetensors, real
checkpoint names; layer-level norms the class builds on some layers only are completed on every
layer, see layer_norms.py), kept when upstream vLLM's ``load_weights`` takes them as its loader
does (vllm_weights.check; else vLLM's own weights below take their place); otherwise upstream vLLM's own class for ARCH is built on CPU and saved
under the checkpoint names its ``load_weights`` accepts (vllm_weights.py, checked by loading them
back); when neither can, only the config is written and the stamp says ``dummy`` with the reason
(servers then use ``--load-format dummy``). The tokenizer files are qwen2_checkpoint.py's; with
``--multimodal`` (the architecture is in upstream's multimodal registry) the model also gets the
processor upstream vLLM loads for it (processors.py), its sizes aligned with the tiny config. The
stamp (``flmigrate-tiny.json``) is written last.

Exit status 2 with one line on stderr (``error: ...``) when the config cannot be loaded or rejects
a shrunk field (the field named), or the processor cannot be made, 1 on anything else.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__:
    from pytest_flmigrate.tiny import layer_norms, processors, qwen2_checkpoint, shrink, vllm_weights
else:  # run as a script in an env without this package: the siblings are on sys.path[0]
    import layer_norms
    import processors
    import qwen2_checkpoint
    import shrink
    import vllm_weights

#: Bump when the output for the same inputs changes (rules, tokenizer, file layout); the cache folder
#: also carries a digest of the generator's code (checkpoints.generator_digest), so no change is missed.
GENERATOR_VERSION = 7
STAMP = "flmigrate-tiny.json"
MTP_LAYERS = 1  # the layers an MTP head's tiny target gives it
DRAFT_DIR = "draft"  # a draft's folder inside its pair's (synthesize.write_pair)
#: What a draft's tiny config sets for its tiny target, per method. EAGLE-3 reads the target's
#: hidden states after these layers (0: the embeddings): vLLM's default, (2, n // 2, n - 3), names a
#: layer the 2-layer target lacks, while the draft's input stays three states wide.
PAIR_FIELDS: dict[str, dict[str, Any]] = {
    "eagle3": {"eagle_aux_hidden_state_layer_ids": list(range(qwen2_checkpoint.NUM_LAYERS + 1))},
}
WEIGHTS = "model.safetensors"  # a tiny model is one file (save_pretrained shards from 5 GB on)
SPECIALS = {
    "pad": qwen2_checkpoint.ENDOFTEXT_ID,
    "bos": qwen2_checkpoint.ENDOFTEXT_ID,
    "eos": qwen2_checkpoint.IM_END_ID,
}


class Rejected(Exception):
    """The config class cannot be made tiny: one line for the user."""


def config_class(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise Rejected(f"config class {module}.{name} not importable in the upstream env: {exc}") from None


@dataclass(frozen=True)
class Loaded:
    """The config to shrink: its class, its values, and the code files shipped with it."""

    cls: Any
    values: dict[str, Any]
    code: dict[str, bytes]  # file name -> bytes (a DIR config's *.py)
    auto_config: str | None  # DIR's auto_map AutoConfig entry ("configuration_x.XConfig")
    folder: Path | None


def load_config(module: str | None, class_name: str | None, folder: Path | None, source: str) -> Loaded:
    """The class's defaults, or the config ``folder`` holds loaded with trust_remote_code."""
    if folder is None:
        assert module and class_name
        cls = config_class(module, class_name)
        return Loaded(cls, cls().to_dict(), {}, None, None)
    from transformers import AutoConfig

    try:
        declared = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=True)
    except Exception as exc:  # noqa: BLE001 - any failure of the checkpoint's config or code: one line
        raise Rejected(f"the config of {source} fails to load in the upstream env: {_first_line(exc)}") from None
    code = {path.name: path.read_bytes() for path in sorted(folder.glob("*.py"))}
    auto = (declared.get("auto_map") or {}).get("AutoConfig") if isinstance(declared, dict) else None
    return Loaded(type(config), config.to_dict(), code, auto, folder)


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    head, _, rest = dotted.partition(".")
    copy = dict(data)
    copy[head] = _set(copy[head], rest, value) if rest else value
    return copy


def _build(cls, data: dict[str, Any]):
    """``cls.from_dict(data)``; for a class whose constructor takes its sub-configs as objects only
    (``from_dict`` hands them over as dicts), its defaults with ``data`` assigned field by field."""
    try:
        return cls.from_dict(json.loads(json.dumps(data)))
    except AttributeError:
        config = cls()
        _assign(config, data)
        return config


def fill_missing(config: Any, fills: dict[str, dict[str, Any]]) -> list[str]:
    """Set each dotted field of ``fills`` (tiny/infer.py's ``fill``: what upstream's code reads,
    valued by role, the code's default or its use) where the built config (or its sub-config) leaves
    it absent, not even as a property or an attribute alias, or None where the fill replaces a None,
    or false where upstream's code asserts it; a sub-config read by attribute left absent, None or a
    plain dict becomes a config object. A
    top-level field (not a sub-config) the top leaves absent or None is also set on the text config
    (vLLM builds the language model with it); where the text config has it, the top takes the text
    config's value (an MTP head reads at the top what its target reads from the text config). As a
    real checkpoint's ``config.json`` would set them; values the class does set stay. What was set,
    ``field=value (what gave it)``, sorted."""
    filled: list[str] = []
    text, text_name = _text_config(config)
    for dotted, entry in sorted(fills.items()):
        mirrored = text is not None and "." not in dotted and not entry["config"]
        mirrored = mirrored and getattr(config, dotted, None) is None  # one the top has is the top's
        texts = mirrored and getattr(text, dotted, None) is not None  # the text config's field: read there
        if texts and not (entry.get("falsy") and not getattr(text, dotted)):  # an asserted false: filled below
            value = getattr(text, dotted)
            if _fill(config, dotted, {**entry, "value": value}):
                filled.append(f"{dotted}={_shown(value)} (the text config's)")
            continue
        scopes = [("", config)] + ([(f"{text_name}.", text)] if mirrored else [])
        for prefix, root in scopes:
            if _fill(root, dotted, entry):
                filled.append(f"{prefix}{dotted}={_shown(entry['value'])} ({entry['why']})")
    return filled


def _text_config(config: Any) -> tuple[Any, str]:
    """The config's text config when it is another object (``get_text_config()``), and its name."""
    try:
        text = config.get_text_config()
    except Exception:  # noqa: BLE001 - a class whose text config cannot be had: none
        return None, ""
    if text is config or not hasattr(text, "to_dict"):
        return None, ""
    return text, next((key for key, value in vars(config).items() if value is text), "text_config")


def _fill(root: Any, dotted: str, entry: dict[str, Any]) -> bool:
    """Set one fill where ``root``'s field at ``dotted`` needs it; whether it was set."""
    *parents, leaf = dotted.split(".")
    scope = root
    for part in parents:
        scope = getattr(scope, part, None)
    if scope is None or not hasattr(scope, "to_dict"):
        return False
    present = hasattr(scope, leaf)
    current = getattr(scope, leaf, None) if present else None
    needed = (
        entry["absent"] if not present else (entry["none"] and current is None) or (entry.get("falsy") and not current)
    )
    remade = entry["config"] and isinstance(current, dict)  # the class's values kept in the object
    if not (needed or remade):
        return False
    value = _sub_config(scope, leaf, {**entry["value"], **(current or {})}) if entry["config"] else entry["value"]
    try:
        setattr(scope, leaf, value)
    except Exception:  # noqa: BLE001 - a read-only property, a validator (a strict dataclass's): the class's own
        return False
    return True


def _sub_config(scope: Any, leaf: str, values: dict[str, Any]) -> Any:
    """A sub-config object for ``scope``'s field ``leaf`` holding ``values``: of the class ``scope``'s
    class declares for it (``sub_configs``: a strict config takes no other), its defaults shrunk as
    the config's own, when it builds so; else the transformers base config class."""
    declared = (getattr(type(scope), "sub_configs", None) or {}).get(leaf)
    if isinstance(declared, type):
        try:
            defaults = shrink.shrink_config(plain(declared().to_dict()), qwen2_checkpoint.VOCAB_SIZE, SPECIALS)
            return _build(declared, {**defaults, **values})
        except Exception:  # noqa: BLE001 - an auto class, a constructor that needs more: the base class
            pass
    return _config_base(scope)(**values)


def _config_base(scope: Any) -> Any:
    """The class a sub-config of ``scope`` is made of: the transformers base config class it derives
    from (``PretrainedConfig``), else its own class."""
    return next((c for c in type(scope).__mro__ if c.__module__ == "transformers.configuration_utils"), type(scope))


def _shown(value: Any) -> str:
    """A filled value for the record: its repr, a sub-config or dict by its keys."""
    if isinstance(value, dict):
        return "{" + ", ".join(sorted(map(str, value))) + "}"
    return repr(value)


def set_layer_counts(config: Any, fields: Sequence[str], layers: int = MTP_LAYERS) -> list[str]:
    """An MTP head's target: set each of ``fields`` (what upstream counts the head's layers with)
    to ``layers`` on the config and on every sub-config that has it, at the top when none has it.
    The dotted fields set, sorted."""
    scopes = {"": config} | {
        f"{name}.": value for name, value in vars(config).items() if hasattr(value, "to_dict") and value is not config
    }
    changed: list[str] = []
    for field in fields:
        having = [prefix for prefix, scope in scopes.items() if hasattr(scope, field)] or [""]
        for prefix in having:
            setattr(scopes[prefix], field, layers)
            changed.append(prefix + field)
    return sorted(changed)


def _assign(config: Any, data: dict[str, Any]) -> None:
    for key, value in data.items():
        current = getattr(config, key, None)
        if isinstance(value, dict) and hasattr(current, "to_dict"):
            _assign(current, value)
        else:
            setattr(config, key, value)


def plain(values: dict[str, Any]) -> dict[str, Any]:
    """``to_dict()`` with the sub-config objects some classes leave in it made dicts too."""
    return json.loads(json.dumps(values, default=lambda o: o.to_dict() if hasattr(o, "to_dict") else repr(o)))


def tiny_config(
    cls,
    arch: str,
    original: dict[str, Any] | None = None,
    fills: dict[str, dict] | None = None,
    kind: str = "",
):
    """The shrunk config object (of ``original``, default the class's defaults) and the fields of
    ``fills`` it was given (``fill_missing``); Rejected naming the field when the class refuses a
    tiny value, or, for a source of a ``kind`` that another follows (``FOLLOWED``), when it does not
    keep a field upstream's code reads without a default (``needed_lost``)."""
    original = plain(cls().to_dict() if original is None else original)
    shrunk = shrink.shrink_config(original, qwen2_checkpoint.VOCAB_SIZE, SPECIALS)
    shrunk["architectures"] = [arch]
    try:
        _build(cls, shrunk)
    except Exception as exc:  # noqa: BLE001 - any validation error; the culprit is searched below
        error = _first_line(exc)
    else:
        config, filled = filled_config(cls, shrunk, fills or {})
        lost = needed_lost(filled, fills or {}) if kind in FOLLOWED else []
        if lost:
            raise Rejected(
                f"{cls.__name__} does not keep {', '.join(lost)} when it loads its config.json, which upstream's "
                "code reads without a default (the class keeps it elsewhere: not the config that code was written for)"
            )
        return config, filled
    for field, value in shrink.changed_fields(original, shrunk):
        try:
            _build(cls, _set(shrunk, field, _get(original, field)))
        except Exception:  # noqa: BLE001 - still rejected without this field's change: not the culprit
            continue
        raise Rejected(f"{cls.__name__} rejects the tiny value {field}={value!r}: {error}")
    raise Rejected(f"{cls.__name__} rejects the tiny config: {error}")


def filled_config(cls, shrunk: dict[str, Any], fills: dict[str, dict]) -> tuple[Any, list[str]]:
    """The config built from ``shrunk`` with the ``fills`` (``fill_missing``) its class still loads
    back as vLLM loads a saved ``config.json`` (``from_dict``), and those set: all of them when it
    does, or when it does not even without them (not the fills' doing); else the fills of absent
    fields and each None replacement that keeps it loading (a class whose fields are all set or all
    None: ``Qwen4ExpTextConfig``'s QSA fields, which the code tests for None together)."""

    def attempt(chosen: dict[str, dict]) -> tuple[Any, list[str], bool]:
        config = _build(cls, shrunk)
        filled = fill_missing(config, chosen)
        return config, filled, _loads_back(cls, config)

    config, filled, loads = attempt(fills)
    if loads or not attempt({})[2]:
        return config, marked_lost(cls, config, filled)
    chosen = {dotted: {**entry, "none": False} for dotted, entry in fills.items()}
    if not attempt(chosen)[2]:
        chosen = {}
    for dotted in sorted(dotted for dotted in chosen if fills[dotted]["none"]):
        if attempt({**chosen, dotted: fills[dotted]})[2]:
            chosen[dotted] = fills[dotted]
    config, filled, _ = attempt(chosen)
    return config, marked_lost(cls, config, filled)


#: the kinds of config source (sources.py's) that another follows when they fail: one whose class
#: cannot carry a field upstream reads gives way (the inferred config, the last, is kept as it is)
FOLLOWED = ("upstream", "newer-transformers")
#: what a filled field's record says when its class does not keep it on loading its config.json
LOST_MARK = "; lost when "
LOST = LOST_MARK + "{cls} loads its config.json"


def marked_lost(cls, config: Any, filled: list[str]) -> list[str]:
    """``filled`` with each field the class does not keep when it loads the config back (``from_dict``,
    as vLLM loads ``config.json``) marked so: a value that comes back None, or a sub-config object
    that comes back a plain dict (a class that does not declare it). A class that does not load the
    config at all leaves the record as it is (the control says so)."""
    try:
        loaded = cls.from_dict(plain(config.to_dict()))
    except Exception:  # noqa: BLE001 - any constructor or validation error: nothing to compare
        return filled
    marked = []
    for line in filled:
        dotted = line.split("=", 1)[0]
        built, back = _at(config, dotted), _at(loaded, dotted)
        lost = (back is None and built is not None) or (isinstance(back, dict) and not isinstance(built, dict))
        marked.append(line[:-1] + LOST.format(cls=cls.__name__) + ")" if lost else line)
    return marked


def needed_lost(filled: list[str], fills: dict[str, dict]) -> list[str]:
    """The fields of ``filled`` (``marked_lost``'s record) that the class does not keep on loading its
    config.json and upstream's code reads without a default (their fill is for an absent field):
    values, not sub-configs (one that comes back a plain dict is still read), and not the copies set
    on the text config (the top keeps its own). A transformers 5 class keeps ``rope_theta`` inside
    ``rope_parameters``: code reading ``config.rope_theta`` was written for another config."""
    lost = []
    for line in filled:
        dotted = line.split("=", 1)[0]
        entry = fills.get(dotted)
        if LOST_MARK in line and entry and entry["absent"] and not entry["config"]:
            lost.append(dotted)
    return lost


def _at(config: Any, dotted: str) -> Any:
    """The value at ``dotted`` in a config (its sub-configs objects or dicts); None when absent."""
    for part in dotted.split("."):
        config = config.get(part) if isinstance(config, dict) else getattr(config, part, None)
    return config


def _loads_back(cls, config: Any) -> bool:
    try:
        cls.from_dict(plain(config.to_dict()))
    except Exception:  # noqa: BLE001 - any validation or constructor error: the class does not load it
        return False
    return True


def _get(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _first_line(exc: BaseException) -> str:
    """The root cause's first line (validators wrap the error that names the problem)."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__
    return vllm_weights.first_line(exc)


def model_class(arch: str, loaded: Loaded | None = None) -> tuple[Any, str]:
    """transformers' class named ``arch`` (else the one a DIR config's ``auto_map`` names so) and
    "", or None and why there is none."""
    import transformers

    try:
        return getattr(transformers, arch), ""
    except (AttributeError, ImportError) as exc:
        if isinstance(exc, AttributeError):
            reason = f"upstream transformers {transformers.__version__} has no class {arch}"
        else:
            reason = f"upstream transformers {transformers.__version__} cannot import {arch}: {_first_line(exc)}"
    own = _own_model_class(arch, loaded.folder) if loaded is not None and loaded.folder is not None else None
    return (own, "") if own is not None else (None, reason)


def _own_model_class(arch: str, folder: Path) -> Any:
    """The class ``arch`` of the checkpoint's own modeling code in ``folder`` (``auto_map``), when it imports."""
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    declared = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    for reference in (declared.get("auto_map") or {}).values():
        if isinstance(reference, str) and reference.rpartition(".")[2] == arch:
            try:
                return get_class_from_dynamic_module(reference, str(folder))
            except Exception:  # noqa: BLE001 - modeling code that does not import here: no class
                return None
    return None


def ship_code(out_dir: Path, loaded: Loaded) -> None:
    """A DIR config's code files beside the tiny config, ``auto_map`` naming its config class only."""
    for name, data in loaded.code.items():
        (out_dir / name).write_bytes(data)
    path = out_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.pop("auto_map", None)
    if loaded.auto_config:
        config["auto_map"] = {"AutoConfig": loaded.auto_config}
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def complete_layer_norms(weights: Path) -> list[str]:
    """Add the layer-level norms some layers lack (layer_norms.completions) to ``weights``; their names."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(weights))
    missing = layer_norms.completions(tensors)
    if missing:
        tensors.update({name: tensors[source].clone() for name, source in missing.items()})
        save_file(tensors, str(weights), metadata={"format": "pt"})
    return sorted(missing)


def write_tokenizer(folder: Path) -> None:
    for name, data in qwen2_checkpoint.tokenizer_files().items():
        (folder / name).write_bytes(data)


def tiny_tokenizer(folder: Path):
    """The tiny tokenizer (qwen2_checkpoint.py's files, written into ``folder``), loaded."""
    from transformers import AutoTokenizer

    write_tokenizer(folder)
    return AutoTokenizer.from_pretrained(str(folder))


def prepared_processor(arch: str, config, tokenizer):
    """The processor a multimodal ``arch`` loads, made for the tiny checkpoint (processors.py; it
    may extend ``tokenizer`` and ``config``); None for a text model. Rejected with the reason when
    it cannot be made."""
    try:
        return processors.prepare(arch, config, tokenizer)
    except processors.Unbuildable as exc:
        raise Rejected(f"no processor for {arch}: {exc}") from None


def write(
    out_dir: Path,
    arch: str,
    loaded: Loaded,
    source: str,
    seed: int,
    kind: str = "",
    fills: dict[str, Any] | None = None,
    multimodal: bool = False,
    draft_of: tuple[Path, str] | None = None,
    mtp_fields: Sequence[str] = (),
) -> dict[str, Any]:
    """Write the tiny model into ``out_dir`` (an empty folder); the stamp's record. ``multimodal``:
    also the processor upstream loads for ``arch``. ``draft_of`` (a target folder, a speculative
    method): the model is a draft, its weights upstream vLLM's draft class's for that target.
    ``mtp_fields``: the model is an MTP head's target, those fields give the head one layer."""
    import torch

    config, filled = tiny_config(loaded.cls, arch, loaded.values, fills, kind)
    mtp_layers = set_layer_counts(config, mtp_fields) if mtp_fields else []
    tokenizer = tiny_tokenizer(out_dir) if multimodal else None
    prepared = prepared_processor(arch, config, tokenizer) if multimodal else None
    cls, reason = (None, "a speculative-decoding draft") if draft_of else model_class(arch, loaded)
    for field, value in PAIR_FIELDS.get(draft_of[1], {}).items() if draft_of else ():
        setattr(config, field, value)
    weights, weights_from = "dummy", ""
    model = None
    if cls is not None:
        torch.manual_seed(seed)
        try:
            model = cls(config).to(torch.float32).eval()
        except Exception as exc:  # noqa: BLE001 - a class that cannot build the tiny config: vLLM's then
            model, reason = None, f"transformers' {arch} cannot build the tiny config: {_first_line(exc)}"
    if model is not None:
        model.save_pretrained(str(out_dir), safe_serialization=True)
        parameters = sum(p.numel() for p in model.parameters())
        completed = complete_layer_norms(out_dir / WEIGHTS)
        weights, weights_from = "synthesized", f"{type(model).__module__}.{type(model).__name__}"
    else:
        config.save_pretrained(str(out_dir))
        parameters, completed = None, []
    if loaded.folder is not None:
        ship_code(out_dir, loaded)
    write_tokenizer(out_dir)
    processor = None
    if prepared is not None:
        try:
            processor = processors.save(out_dir, prepared, tokenizer)
        except processors.Unbuildable as exc:
            raise Rejected(f"no processor for {arch}: {exc}") from None
    refused, found = "", None
    if model is None:
        found = vllm_weights.write(out_dir, arch, seed, trust_remote_code=loaded.folder is not None, draft_of=draft_of)
    else:  # transformers' names, as upstream's loader takes them, else vLLM's own in their place
        refused, found = vllm_weights.check(out_dir, arch, seed, trust_remote_code=loaded.folder is not None)
        if refused:
            reason, completed = f"upstream vLLM refuses the checkpoint of {weights_from}: {refused}", []
            weights, weights_from, parameters = "dummy", "", None
    if found is not None:
        if found.parameters is not None:
            weights, weights_from, parameters = "synthesized", found.source, found.parameters
        reason = f"{reason}; {found.reason}" if found.reason else reason
    with_legacy_rope(out_dir / "config.json")
    record = {
        "arch": arch,
        "config": f"{loaded.cls.__module__}.{loaded.cls.__name__}",
        "config_source": source,
        "config_kind": kind,
        "remote_code": sorted(loaded.code),
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "weights": weights,
        "weights_from": weights_from,
        "reason": reason if weights == "dummy" else "",
        "parameters": parameters,
        "completed_norms": completed,
        "refused_names": refused,  # why upstream's loader refused transformers' checkpoint ("" when it took it)
        "fills": fills or {},  # what the source asked to fill (--fill): the same asking makes the same model
        "filled_fields": filled,
        **({"mtp_layer_fields": mtp_layers} if mtp_layers else {}),
        "processor": processor,
        "files": {path.name: _sha256(path) for path in sorted(out_dir.iterdir()) if path.is_file()},
    }
    (out_dir / STAMP).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return record


def with_legacy_rope(path: Path) -> None:
    """Beside transformers 5's ``rope_parameters``, the transformers 4 spelling a pinned env reads
    (``rope_scaling`` without the theta, ``rope_theta``; ``rope_scaling`` null beside a null
    ``rope_parameters``), in the config and each sub-config, as
    checkpoints made for both carry: a pin's migrated code may read ``config.rope_scaling``, which
    transformers 5 leaves out of a saved config (it is its alias of ``rope_parameters``) and a config
    of no class (inferred, remote code) then lacks at the pin. transformers 5 reads the pair back as
    the same ``rope_parameters``."""
    data = json.loads(path.read_text(encoding="utf-8"))

    def add(config: dict[str, Any]) -> None:
        rope = config.get("rope_parameters")
        if "rope_parameters" in config and rope is None:
            config.setdefault("rope_scaling", None)
        elif isinstance(rope, dict) and "rope_type" in rope and "rope_scaling" not in config:  # not per layer type
            config["rope_scaling"] = {key: value for key, value in rope.items() if key != "rope_theta"}
            if "rope_theta" in rope:
                config.setdefault("rope_theta", rope["rope_theta"])
        for value in config.values():
            if isinstance(value, dict):
                add(value)

    add(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_pair(
    out_dir: Path,
    arch: str,
    loaded: Loaded,
    source: str,
    seed: int,
    kind: str,
    fills: dict[str, Any] | None,
    method: str,
) -> dict[str, Any]:
    """A speculative-decoding draft's tiny model: the reference tiny Qwen2 target in ``out_dir`` (what
    servers serve) and the draft in ``out_dir/draft``, its weights built for that target; the stamp
    (at ``out_dir``) is the draft's, with ``draft`` naming the pair."""
    qwen2_checkpoint.write_checkpoint(out_dir, seed=seed)
    draft_dir = out_dir / DRAFT_DIR
    draft_dir.mkdir()
    record = write(draft_dir, arch, loaded, source, seed, kind, fills, draft_of=(out_dir, method))
    (draft_dir / STAMP).unlink()
    record["draft"] = {"method": method, "path": DRAFT_DIR, "target": "Qwen2ForCausalLM"}
    record["files"] = {  # the target's files too: the control serves it, and is kept by this stamp's hash
        **{path.name: _sha256(path) for path in sorted(out_dir.iterdir()) if path.is_file()},
        **{f"{DRAFT_DIR}/{name}": digest for name, digest in record["files"].items()},
    }
    (out_dir / STAMP).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="synthesize", description="Synthesize a tiny model (runs in the upstream env)."
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--config-module")
    parser.add_argument("--config-class")
    parser.add_argument("--config-dir", type=Path)
    parser.add_argument("--source", default="", help="where the config comes from, for the stamp and errors")
    parser.add_argument("--config-kind", default="", help="the kind of source (tiny/sources.py), for the stamp")
    parser.add_argument(
        "--fill",
        type=json.loads,
        default={},
        help="JSON: dotted field -> fill (tiny/infer.py), set where absent or None",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--multimodal", action="store_true", help="also write the processor upstream vLLM loads for ARCH"
    )
    parser.add_argument("--draft-method", help="the model is a speculative-decoding draft of this method")
    parser.add_argument(
        "--mtp-fields",
        default="",
        help="comma-separated: the model is an MTP head's target; these fields give it one layer",
    )
    args = parser.parse_args(argv)
    if (args.config_dir is None) == (args.config_module is None or args.config_class is None):
        parser.error("give --config-dir, or --config-module and --config-class")
    source = args.source or str(args.config_dir or f"{args.config_module}.{args.config_class}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        loaded = load_config(args.config_module, args.config_class, args.config_dir, source)
        if args.draft_method:
            record = write_pair(
                args.out_dir, args.arch, loaded, source, args.seed, args.config_kind, args.fill, args.draft_method
            )
        else:
            record = write(
                args.out_dir,
                args.arch,
                loaded,
                source,
                args.seed,
                args.config_kind,
                args.fill,
                args.multimodal,
                mtp_fields=[name for name in args.mtp_fields.split(",") if name],
            )
    except Rejected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({key: record[key] for key in ("weights", "reason", "parameters")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
