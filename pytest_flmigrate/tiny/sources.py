"""Where a tiny model's config comes from (host side, no torch), in this order of preference:

1. ``upstream``: the config class of upstream vLLM or of upstream's transformers, by its defaults;
2. ``newer-transformers``: the class of a newer transformers release (the one step 2 found it
   in), shipped inside the tiny checkpoint as its own code (remote_code.py);
3. ``tiny-from``: ``--tiny-from DIR_OR_REPO``, a checkpoint's ``config.json`` and its ``*.py``,
   from a local folder or fetched from the hub (``*.json``, ``*.py`` and tokenizer files only,
   never weights);
4. ``inferred``: offline and with nothing else, a config inferred from what the model's upstream
   vLLM code reads from its config (infer.py).

A tiny model is synthesized from the first source that gives a config; when that fails, from the
next (``candidates``). The first three also carry values for the fields upstream's code reads
(``infer.class_fills``: by role, the code's default or its use, as an inferred config's), set only
where the built config leaves them absent or None; the tiny model's record lists those it set.
Each source says where it came from in one line (``text``: summary.json's ``tiny`` and
report.md). The folders this module writes (a shipped config module, an inferred config) go under
the tiny cache's ``sources/``, written into a temporary folder and renamed: complete or absent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index.sources import cache_dir
from pytest_flmigrate.tiny import drafts

if TYPE_CHECKING:
    from pytest_flmigrate.run import ModelRun
    from pytest_flmigrate.steps import discover

UPSTREAM, NEWER, TINY_FROM, INFERRED = "upstream", "newer-transformers", "tiny-from", "inferred"
#: What --tiny-from fetches from the hub: configs, code and tokenizer files, never weights.
HUB_PATTERNS = ["*.json", "*.py", "tokenizer*", "*.model", "*.tiktoken", "*.txt"]
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: how many of an inferred config's fields valued by their use its one line names
BY_USE_SHOWN = 6


@dataclass(frozen=True)
class ConfigSource:
    kind: str  # UPSTREAM, NEWER, TINY_FROM or INFERRED
    text: str  # where it came from, for the report
    module: str | None = None  # UPSTREAM: the config class, importable in the upstream env
    class_name: str | None = None
    folder: Path | None = None  # the others: a config.json (and *.py) AutoConfig loads
    #: dotted field -> infer.fill, set where the config leaves it absent or None (infer.class_fills)
    fills: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: an MTP head's target: the fields that count the head's layers, set to one (mtp.py)
    mtp_fields: tuple[str, ...] = ()

    def args(self) -> list[str]:
        """synthesize.py's arguments for this config."""
        fill = ["--fill", json.dumps(self.fills, sort_keys=True)] if self.fills else []
        fill += ["--mtp-fields", ",".join(self.mtp_fields)] if self.mtp_fields else []
        if self.folder is not None:
            return ["--config-dir", str(self.folder), "--source", self.text, *fill]
        assert self.module and self.class_name
        return ["--config-module", self.module, "--config-class", self.class_name, "--source", self.text, *fill]

    def tag(self) -> str:
        """The tiny cache's name part for this source: "" for an upstream class (its version says
        it all), else the kind and a digest of the config files (a changed folder is a new model);
        fields filled in add a digest of theirs, an MTP head's target ``-mtp``."""
        fill = (
            f"-fill-{hashlib.sha256(json.dumps(self.fills, sort_keys=True).encode()).hexdigest()[:8]}"
            if self.fills
            else ""
        ) + ("-mtp" if self.mtp_fields else "")
        if self.folder is None:
            return fill
        digest = hashlib.sha256()
        for path in sorted(self.folder.glob("*.py")) + [self.folder / "config.json"]:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return f"-{self.kind}-{digest.hexdigest()[:12]}{fill}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text}


def candidates(run: ModelRun) -> Iterator[tuple[str, Callable[[], ConfigSource | None]]]:
    """(kind, maker) of the sources in the module docstring's order, each made when asked (None:
    it has no config for ``run``'s model; checkpoints.for_run asks them in turn). --tiny-from, when
    given, is the last asked: what the user named is not passed over for a guess."""
    from pytest_flmigrate.steps import discover
    from pytest_flmigrate.tiny import infer

    config = run.unit().config
    # a class upstream defines only for type checkers does not exist at run time: the checkpoint's
    # code is the config, as when no source defines one
    if config is not None and config.defined == discover.TYPE_CHECKING_ONLY:
        config = None

    def upstream() -> ConfigSource | None:
        if config is None or config.origin == discover.NEWER_TRANSFORMERS:
            return None
        where = "upstream vLLM" if config.origin == "vllm" else "upstream's transformers"
        text = f"{where}: {config.module}.{config.class_name}"
        return ConfigSource(UPSTREAM, text, config.module, config.class_name, fills=infer.class_fills(run))

    def newer() -> ConfigSource | None:
        found = config if config is not None and config.origin == discover.NEWER_TRANSFORMERS else None
        found = found or (newer_config(run) if config is None else None)
        if found is None:
            return None
        source = newer_transformers(run, found.module, found.class_name, found.model_type)
        return dataclasses.replace(source, fills=infer.class_fills(run))

    def tiny_from() -> ConfigSource:
        folder, text = fetch(str(run.settings.tiny_from))
        return ConfigSource(TINY_FROM, text, folder=folder, fills=infer.class_fills(run))

    def inferred() -> ConfigSource:
        return inferred_source(run)

    yield UPSTREAM, upstream
    yield NEWER, newer
    yield (TINY_FROM, tiny_from) if run.settings.tiny_from else (INFERRED, inferred)


def newer_config(run: ModelRun) -> discover.ConfigSource | None:
    """The config a newer transformers registers for the unit's name or architecture (None also
    when no newer release can be had, e.g. offline)."""
    from pytest_flmigrate.steps import discover

    origin = discover.ConfigOrigin(
        discover.NEWER_TRANSFORMERS,
        "transformers.models",
        lambda: discover.newer_source(run.workspace.newer_transformers),
    )
    catalog = discover.ConfigCatalog([origin])
    try:
        found = catalog.by_model_type(run.name)
        for arch in run.unit().architectures:
            found = found or next(iter(catalog.by_architecture(arch.name)), None)
    except FlmigrateError:
        return None
    return found


def newer_transformers(run: ModelRun, module: str, class_name: str, model_type: str) -> ConfigSource:
    from pytest_flmigrate.tiny import remote_code

    tree, _ = run.workspace.newer_transformers()
    upstream_modules = run.workspace.upstream_transformers_index().modules
    files = remote_code.config_code(tree.root, module, lambda name: name in upstream_modules)
    arch = tiny_arch(run)
    files["config.json"] = remote_code.config_json(model_type, module, class_name, arch)
    folder = write_folder(run.name, files)
    upstream_version = run.workspace.upstream_transformers().version
    text = (
        f"transformers {tree.version} (newer than upstream's {upstream_version}): {module}.{class_name}, "
        "shipped in the tiny checkpoint as its own code"
    )
    return ConfigSource(NEWER, text, folder=folder)


def tiny_arch(run: ModelRun) -> str:
    """The architecture a tiny model of the unit serves: its first speculative-decoding draft, else
    its first that is not an MTP head."""
    archs = run.unit().architectures
    draft = drafts.find_draft(archs)
    if draft:
        return draft[0].name
    return next((a.name for a in archs if not a.name.endswith("MTP")), archs[0].name)


def draft_method(run: ModelRun) -> str | None:
    """The speculative-decoding method of the unit's draft (None: the unit is no draft)."""
    draft = drafts.find_draft(run.unit().architectures)
    return draft[1] if draft else None


#: What a model file says when it registers a multimodal processor (pooling and retrieval models
#: with image inputs sit outside upstream's multimodal registry table).
PROCESSOR_REGISTRATION = "register_processor("


def is_multimodal(run: ModelRun, arch: str) -> bool:
    """Whether the tiny model of ``arch`` needs the processor upstream loads: the architecture is in
    upstream's multimodal registry, or the unit's files register a multimodal processor."""
    unit = run.unit()
    if any(a.is_multimodal for a in unit.architectures if a.name == arch):
        return True
    root = run.workspace.upstream().root
    return any(PROCESSOR_REGISTRATION in (root / relative).read_text(encoding="utf-8") for relative in unit.files)


def write_folder(model: str, files: dict[str, str], cache: Path | None = None) -> Path:
    """``files`` in the tiny cache's ``sources/<model>-<digest>/``, complete or absent."""
    digest = hashlib.sha256("".join(f"{name}\0{text}\0" for name, text in sorted(files.items())).encode())
    target = (cache if cache is not None else cache_dir()) / "tiny" / "sources" / f"{model}-{digest.hexdigest()[:12]}"
    if target.is_dir():
        return target
    work = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name, text in files.items():
        (work / name).write_text(text, encoding="utf-8")
    try:
        os.replace(work, target)
    except OSError:  # another process wrote the same folder first: the same bytes
        shutil.rmtree(work, ignore_errors=True)
    return target


def fetch(value: str) -> tuple[Path, str]:
    """--tiny-from's folder holding ``config.json`` (a local folder, else a hub repo's files fetched
    into the hub cache) and the source's text; one line when there is none."""
    path = Path(value).expanduser()
    if path.exists():
        if not path.is_dir():
            raise FlmigrateError(
                f"--tiny-from {value}: a file, not a folder; pass a checkpoint folder or a hub repo id"
            )
        _require_config(path, value)
        return path.resolve(), f"--tiny-from {path.resolve()} (its config.json and code)"
    if not REPO_ID.match(value):
        raise FlmigrateError(f"--tiny-from {value}: no such folder, and not a hub repo id (OWNER/NAME)")
    folder = _download(value)
    _require_config(folder, value)
    return folder, f"--tiny-from {value} (hub: its config.json and code)"


def _require_config(folder: Path, value: str) -> None:
    if not (folder / "config.json").is_file():
        raise FlmigrateError(
            f"--tiny-from {value}: no config.json in {folder}; pass a checkpoint folder holding its "
            "config.json (and the *.py it names) or a hub repo id"
        )


def _download(repo: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(repo, allow_patterns=HUB_PATTERNS))
    except GatedRepoError:
        why = "the repo is gated: accept its terms on the hub and set HF_TOKEN"
    except RepositoryNotFoundError:
        why = "no such repo on the hub, or it is private (set HF_TOKEN)"
    except LocalEntryNotFoundError:
        why = "the hub cannot be reached (offline?) and the repo is not in the hub cache"
    except Exception as exc:  # noqa: BLE001 - any other hub or network failure: one line
        text = str(exc).strip().splitlines()
        why = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
    raise FlmigrateError(
        f"--tiny-from {repo}: cannot fetch its config from the hub ({why}); pass a local folder holding "
        "its config.json and *.py"
    )


def inferred_source(run: ModelRun) -> ConfigSource:
    """The INFERRED source for ``run``'s unit (tiny/infer.py); FlmigrateError naming the fields it
    cannot value."""
    from pytest_flmigrate.tiny import infer

    unit = run.unit()
    root = run.workspace.upstream().root
    base = infer.base_config(run)
    own = [root / relative for relative in unit.files]
    imported = [path for path in infer.imported_model_files(run) if path not in own]
    signature = infer.signatures(run, own + imported)

    def reads_of(paths: list[Path]) -> infer.Reads:
        return infer.config_reads([path.read_text(encoding="utf-8") for path in paths], signature)

    reads = reads_of(own if base else own + imported)
    borrowed = reads_of(imported) if base and imported else None  # only to fill what the base lacks
    arch = tiny_arch(run)
    inferred = infer.inferred_config(unit.name, arch, reads, base, unit.module, borrowed)
    if inferred.missing:
        missing = inferred.missing
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise FlmigrateError(
            f"--tiny: a config for {unit.name} inferred from its code lacks "
            f"{shown} (read with no default, no role or use gives a value); pass --tiny-from a checkpoint folder "
            "or repo id"
        )
    folder = write_folder(unit.name, inferred.files)
    read = len(reads.required | set(reads.defaults))
    used = inferred.by_use
    more = f" and {len(used) - BY_USE_SHOWN} more (the config's code names them)" if len(used) > BY_USE_SHOWN else ""
    by_use = f"; valued by their use: {', '.join(used[:BY_USE_SHOWN])}{more}" if used else ""
    text = (
        f"inferred from upstream vLLM's {unit.module} ({read} fields read; base "
        f"{base.text if base else 'PretrainedConfig'}{by_use})"
    )
    # over a base, what the base's class leaves absent or None is filled as for a config class
    # (Qwen3-ASR's thinker config leaves the forced aligner's classify_num None)
    fills = {**infer.class_fills(run), **inferred.fills} if base else inferred.fills
    return ConfigSource(INFERRED, text, folder=folder, fills=fills)
