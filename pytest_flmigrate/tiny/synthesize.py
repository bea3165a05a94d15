"""Synthesize a tiny model for an architecture, in the upstream env (torch and transformers there).

Run it as a script with the upstream env's python (tiny/checkpoints.py does), never import it
into the tool's process for work: the heavy imports are inside the functions. ::

    python path/to/synthesize.py OUT_DIR --arch Cohere2MoeForCausalLM \\
        --config-module transformers.models.cohere2_moe.configuration_cohere2_moe \\
        --config-class Cohere2MoeConfig [--seed 0] [--multimodal]

The config is the config class's defaults shrunk by shrink.py's rules (vocab = the tiny
tokenizer's), with ``architectures = [ARCH]``. When upstream transformers has a class named ARCH,
it is built from that config under a fixed seed and saved with ``save_pretrained`` (float32
safetensors, real checkpoint names; layer-level norms the class builds on some layers only are
completed on every layer, see layer_norms.py); otherwise only the config is written and the stamp says
``dummy`` with the reason (servers then use ``--load-format dummy``). The tokenizer files are
qwen2_checkpoint.py's; with ``--multimodal`` (the architecture is in upstream's multimodal
registry) the model also gets the processor upstream vLLM loads for it (processors.py), its sizes
aligned with the tiny config. The stamp (``flmigrate-tiny.json``) is
written last.

Exit status 2 with one line on stderr (``error: ...``) when the config class cannot be imported
or rejects a shrunk field (the field named), or the processor cannot be made, 1 on anything else.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
from pathlib import Path
from typing import Any

if __package__:
    from pytest_flmigrate.tiny import layer_norms, processors, qwen2_checkpoint, shrink
else:  # run as a script in an env without this package: the siblings are on sys.path[0]
    import layer_norms
    import processors
    import qwen2_checkpoint
    import shrink

#: Bump when the output for the same inputs changes (rules, tokenizer, file layout).
GENERATOR_VERSION = 5
STAMP = "flmigrate-tiny.json"
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


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    head, _, rest = dotted.partition(".")
    copy = dict(data)
    copy[head] = _set(copy[head], rest, value) if rest else value
    return copy


def _build(cls, data: dict[str, Any]):
    return cls.from_dict(json.loads(json.dumps(data)))


def tiny_config(cls, arch: str):
    """The shrunk config object; Rejected naming the field when the class refuses a tiny value."""
    original = cls().to_dict()
    shrunk = shrink.shrink_config(original, qwen2_checkpoint.VOCAB_SIZE, SPECIALS)
    shrunk["architectures"] = [arch]
    try:
        return _build(cls, shrunk)
    except Exception as exc:  # noqa: BLE001 - any validation error; the culprit is searched below
        error = _first_line(exc)
    for field, value in shrink.changed_fields(original, shrunk):
        try:
            _build(cls, _set(shrunk, field, _get(original, field)))
        except Exception:  # noqa: BLE001 - still rejected without this field's change: not the culprit
            continue
        raise Rejected(f"{cls.__name__} rejects the tiny value {field}={value!r}: {error}")
    raise Rejected(f"{cls.__name__} rejects the tiny config: {error}")


def _get(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _first_line(exc: BaseException) -> str:
    """The root cause's first line (validators wrap the error that names the problem)."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def model_class(arch: str) -> tuple[Any, str]:
    """transformers' class named ``arch`` and "", or None and why there is none."""
    import transformers

    try:
        return getattr(transformers, arch), ""
    except (AttributeError, ImportError) as exc:
        if isinstance(exc, AttributeError):
            return None, f"upstream transformers {transformers.__version__} has no class {arch}"
        return None, f"upstream transformers {transformers.__version__} cannot import {arch}: {_first_line(exc)}"


def complete_layer_norms(weights: Path) -> list[str]:
    """Add the layer-level norms some layers lack (layer_norms.completions) to ``weights``; their names."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(weights))
    missing = layer_norms.completions(tensors)
    if missing:
        tensors.update({name: tensors[source].clone() for name, source in missing.items()})
        save_file(tensors, str(weights), metadata={"format": "pt"})
    return sorted(missing)


def tiny_tokenizer(folder: Path):
    """The tiny tokenizer (qwen2_checkpoint.py's files, written into ``folder``), loaded."""
    from transformers import AutoTokenizer

    write_tokenizer(folder)
    return AutoTokenizer.from_pretrained(str(folder))


def write_tokenizer(folder: Path) -> None:
    for name, data in qwen2_checkpoint.tokenizer_files().items():
        (folder / name).write_bytes(data)


def prepared_processor(out_dir: Path, arch: str, config, tokenizer):
    """The processor a multimodal ``arch`` loads, made for the tiny checkpoint (processors.py; it
    may extend ``tokenizer`` and ``config``); None for a text model. Rejected with the reason when
    it cannot be made."""
    try:
        return processors.prepare(arch, config, tokenizer)
    except processors.Unbuildable as exc:
        raise Rejected(f"no processor for {arch}: {exc}") from None


def write(
    out_dir: Path, arch: str, module: str, class_name: str, seed: int, multimodal: bool = False
) -> dict[str, Any]:
    """Write the tiny model into ``out_dir`` (an empty folder); the stamp's record. ``multimodal``:
    also the processor upstream loads for ``arch``."""
    import torch

    config = tiny_config(config_class(module, class_name), arch)
    tokenizer = tiny_tokenizer(out_dir) if multimodal else None
    prepared = prepared_processor(out_dir, arch, config, tokenizer) if multimodal else None
    cls, reason = model_class(arch)
    if cls is not None:
        torch.manual_seed(seed)
        model = cls(config).to(torch.float32).eval()
        model.save_pretrained(str(out_dir), safe_serialization=True)
        parameters = sum(p.numel() for p in model.parameters())
        completed = complete_layer_norms(out_dir / WEIGHTS)
    else:
        config.save_pretrained(str(out_dir))
        parameters, completed = None, []
    write_tokenizer(out_dir)
    processor = None
    if prepared is not None:
        try:
            processor = processors.save(out_dir, prepared, tokenizer)
        except processors.Unbuildable as exc:
            raise Rejected(f"no processor for {arch}: {exc}") from None
    record = {
        "arch": arch,
        "config": f"{module}.{class_name}",
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "weights": "synthesized" if cls is not None else "dummy",
        "reason": reason,
        "parameters": parameters,
        "completed_norms": completed,
        "processor": processor,
        "files": {
            path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(out_dir.iterdir())
            if path.is_file()
        },
    }
    (out_dir / STAMP).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="synthesize", description="Synthesize a tiny model (runs in the upstream env)."
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--config-module", required=True)
    parser.add_argument("--config-class", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--multimodal", action="store_true", help="also write the processor upstream vLLM loads for ARCH"
    )
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        record = write(args.out_dir, args.arch, args.config_module, args.config_class, args.seed, args.multimodal)
    except Rejected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({key: record[key] for key in ("weights", "reason", "parameters")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
