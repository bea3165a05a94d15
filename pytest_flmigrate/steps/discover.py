"""The model unit and its placeholders, resolved from upstream source (never guessed).

A unit is ``vllm/model_executor/models/<name>.py`` or a package ``vllm/models/<name>/``.
Architectures come from upstream's model registry; ``model_type`` and the config class are
the top-level model's: a HF ``config.json`` when one is given, else what the registered
architecture classes receive (their ``config_class``, the ``hf_config`` type they narrow to or
the unit's classes take it as, the transformers registry entry naming them), else the config class the unit imports under the
model's name or upstream's registries hold under it. Config classes are looked up in upstream
vLLM, upstream's transformers, then (for a transformers config upstream's lacks) a newer
transformers release from PyPI. A unit no source
defines a config for reads it from the checkpoint's own code (``trust_remote_code``), and so does
one whose config class upstream defines only under ``if TYPE_CHECKING:`` (a type stub of the
checkpoint's config). :meth:`ModelUnit.config_source` classifies where the config comes from (for
summary.json and the config bridge). The display name comes from the module docstring.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index import registries
from pytest_flmigrate.index.file_imports import imports_of
from pytest_flmigrate.index.records import TreeIndex
from pytest_flmigrate.index.registries import Architecture
from pytest_flmigrate.index.sources import SourceTree
from pytest_flmigrate.index.symbols import module_name, parse_module

MODELS_DIR = Path("model_executor/models")
PACKAGES_DIR = Path("models")
_CONFIG_MODULE_PREFIXES = ("transformers", "vllm.transformers_utils.configs", "vllm.models.")
_NOT_MODEL_CONFIGS = {"PretrainedConfig", "PreTrainedConfig", "GenerationConfig"}
_DOCSTRING_NAME = re.compile(r"(?:Inference-only|PyTorch)\s+(.+?)\s+model", re.IGNORECASE)
_ARCH_SUFFIXES = ("ForConditionalGeneration", "ForCausalLM", "Model", "MTP")
REMOTE_CODE = "from the checkpoint (trust_remote_code)"
NEWER_TRANSFORMERS = "newer transformers"
# How a config class is defined where it was found (ConfigSource.defined).
CONFIG_MODULE = "config module"  # a configuration module: the class alone, bridgeable
MODEL_MODULE = "model module"  # at runtime inside model code: the migrated module itself holds it
TYPE_CHECKING_ONLY = "TYPE_CHECKING only"  # a type stub: at runtime the checkpoint's code provides it
# Model code upstream (configuration modules of model packages excepted: configuration_x, configs).
_MODEL_CODE = ("vllm.model_executor.models.", "vllm.models.")


@dataclass(frozen=True)
class ConfigSource:
    """Where the unit's config class lives upstream."""

    model_type: str
    class_name: str
    module: str  # e.g. vllm.transformers_utils.configs.step3p5 or transformers.models.x.configuration_x
    origin: str  # "vllm", "transformers" (upstream's) or NEWER_TRANSFORMERS
    defined: str = CONFIG_MODULE  # CONFIG_MODULE, MODEL_MODULE or TYPE_CHECKING_ONLY


def is_model_code(module: str) -> bool:
    """Upstream model code, not a configuration module (``vllm.models.x.configuration_x`` is one)."""
    return module.startswith(_MODEL_CODE) and not module.rpartition(".")[2].startswith("config")


@dataclass(frozen=True)
class ModelUnit:
    name: str
    module: str
    is_package: bool
    files: tuple[str, ...]  # paths relative to the upstream tree root
    architectures: tuple[Architecture, ...]
    display_name: str
    config: ConfigSource | None
    evidence: dict[str, str] = field(default_factory=dict)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(arch.class_name for arch in self.architectures))

    @property
    def is_multimodal(self) -> bool:
        return any(arch.is_multimodal for arch in self.architectures)

    @property
    def pooling_task(self) -> str | None:
        """The pooling task when the unit is a pooling model, else None: see :func:`pooling_task`."""
        return pooling_task(self.architectures)

    @property
    def config_from_checkpoint(self) -> bool:
        """The checkpoint's own code (trust_remote_code) defines the unit's config at run time:
        no source defines it, or upstream only under ``TYPE_CHECKING``."""
        if self.config is not None:
            return self.config.defined == TYPE_CHECKING_ONLY
        return self.evidence.get("model_type") == REMOTE_CODE

    def config_source(self) -> dict[str, str | None]:
        """Where the config comes from, for summary.json: ``kind`` is one of ``vllm`` (a config
        module of upstream vLLM), ``transformers``, ``newer transformers``, ``model module``
        (defined at run time in upstream's model code, which the migration writes),
        ``TYPE_CHECKING only`` (a type stub upstream; the checkpoint's code serves) or
        ``checkpoint`` (no source defines it; the checkpoint's code serves)."""
        config = self.config
        if config is None:
            kind = "checkpoint" if self.config_from_checkpoint else "unresolved"
            return {"kind": kind, "class": None, "module": None, "model_type": None}
        kind = config.origin if config.defined == CONFIG_MODULE else config.defined
        return {"kind": kind, "class": config.class_name, "module": config.module, "model_type": config.model_type}

    def placeholders(self) -> dict[str, object]:
        unresolved = REMOTE_CODE if self.config_from_checkpoint else None
        return {
            "model_name": self.name,
            "model_name_lower": self.name.lower(),
            "MODEL_DISPLAY_NAME": self.display_name,
            "ModelClassName": self.class_names[0],
            "ModelClassNames": list(self.class_names),
            "model_type": self.config.model_type if self.config else unresolved,
            "ConfigClassName": self.config.class_name if self.config else unresolved,
        }


def unit_candidates(vllm_dir: Path) -> list[str]:
    """Every model unit name upstream: model files and model packages."""
    names = {p.stem for p in (vllm_dir / MODELS_DIR).glob("*.py") if not p.stem.startswith("_")}
    package_root = vllm_dir / PACKAGES_DIR
    if package_root.is_dir():
        names |= {p.name for p in package_root.iterdir() if (p / "__init__.py").exists()}
    return sorted(names)


def new_model_files(upstream_dir: Path, pinned_dir: Path) -> list[str]:
    """Top-level upstream model files the pin lacks, by stem (the batches of the benchmarks)."""
    pinned = {p.name for p in (pinned_dir / MODELS_DIR).glob("*.py")}
    return sorted(
        p.stem for p in (upstream_dir / MODELS_DIR).glob("*.py") if p.name not in pinned and p.name != "__init__.py"
    )


def new_model_packages(upstream_dir: Path, pinned_dir: Path) -> list[str]:
    """Upstream model packages (``vllm/models/<name>/``) the pin has under neither layout."""
    pinned = set(unit_candidates(pinned_dir))
    root = upstream_dir / PACKAGES_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "__init__.py").exists() and p.name not in pinned)


def find_unit(
    upstream: SourceTree,
    upstream_index: TreeIndex,
    transformers_index: TreeIndex,
    transformers_dir: Path,
    name: str,
    hf_config: dict | None = None,
    newer_transformers: Callable[[], tuple[SourceTree, TreeIndex]] | None = None,
) -> ModelUnit:
    """The unit ``name`` upstream; ``newer_transformers`` gives a transformers release newer than
    upstream's (tree and index), asked for only when the unit imports a transformers config class
    upstream's transformers lacks, or the served model's model_type is unknown upstream."""
    vllm_dir = upstream.package_dir
    file = vllm_dir / MODELS_DIR / f"{name}.py"
    package = vllm_dir / PACKAGES_DIR / name
    if file.exists():
        paths, is_package = [file], False
    elif (package / "__init__.py").exists():
        paths, is_package = sorted(package.rglob("*.py")), True
    else:
        close = difflib.get_close_matches(name, unit_candidates(vllm_dir), n=5, cutoff=0.5)
        hint = f"closest upstream names: {', '.join(close)}" if close else "no similar name upstream"
        raise FlmigrateError(
            f"unknown model '{name}' in upstream vLLM {upstream.version}: {hint}",
            f"looked for {file} and {package}/",
        )
    relative = tuple(str(path.relative_to(upstream.root)) for path in paths)
    module = module_name(Path(relative[0]))[0] if not is_package else f"vllm.models.{name}"
    architectures = tuple(
        arch
        for arch in registries.model_registry(vllm_dir)
        if arch.dotted_module == module or arch.dotted_module.startswith(module + ".")
    )
    if not architectures:
        raise FlmigrateError(
            f"model '{name}' has no architecture in upstream's model registry; it is not a "
            "servable model (a helper module?); pass the model that imports it",
            f"{module} is not named in {registries.MODEL_REGISTRY}",
        )
    evidence = {
        "architectures": f"{registries.MODEL_REGISTRY} entries pointing at {module}",
    }
    catalog = ConfigCatalog(
        [
            ConfigOrigin("vllm", "vllm", lambda: (registries.vllm_config_registry(vllm_dir), upstream_index)),
            ConfigOrigin(
                "transformers",
                "transformers.models",
                lambda: _transformers_source(transformers_dir, transformers_index),
            ),
        ]
    )
    imported = _imported_config_classes(upstream.root, paths)
    # A newer transformers is asked for (and fetched once) only for a config upstream's lacks: a
    # transformers config class the unit imports, or the served model's model_type.
    wanted = (hf_config or {}).get("model_type")
    lacking = any(m.startswith("transformers") and catalog.source_of(c, m) is None for m, c in imported)
    if newer_transformers and (lacking or (wanted and catalog.by_model_type(wanted) is None)):
        catalog.origins.append(
            ConfigOrigin(NEWER_TRANSFORMERS, "transformers.models", lambda: newer_source(newer_transformers))
        )
    config = _resolve_config(name, upstream.root, paths, architectures, imported, catalog, hf_config, evidence)
    display_name = _display_name(paths[0], architectures, evidence)
    return ModelUnit(
        name=name,
        module=module,
        is_package=is_package,
        files=relative,
        architectures=architectures,
        display_name=display_name,
        config=config,
        evidence=evidence,
    )


def _display_name(path: Path, architectures: tuple[Architecture, ...], evidence: dict[str, str]) -> str:
    tree = parse_module(path)
    docstring = ast.get_docstring(tree) if tree else None
    match = _DOCSTRING_NAME.search(docstring or "")
    if match:
        evidence["MODEL_DISPLAY_NAME"] = f"module docstring of {path.name}"
        return match.group(1)
    base = architectures[0].class_name
    for suffix in _ARCH_SUFFIXES:
        if base.endswith(suffix) and base != suffix:
            base = base[: -len(suffix)]
            break
    evidence["MODEL_DISPLAY_NAME"] = f"architecture {architectures[0].name} without its suffix"
    return base


def _imported_config_classes(root: Path, paths: list[Path]) -> list[tuple[str, str]]:
    """(importing module, class) for every config class the unit's files under ``root`` import,
    in file order."""
    found: list[tuple[str, str]] = []
    for path in paths:
        tree = parse_module(path)
        for ref in imports_of(tree, *module_name(path.relative_to(root))) if tree else ():
            if (
                ref.name is not None
                and ref.module.startswith(_CONFIG_MODULE_PREFIXES)
                and ref.name.endswith("Config")
                and ref.name not in _NOT_MODEL_CONFIGS
                and (ref.module, ref.name) not in found
            ):
                found.append((ref.module, ref.name))
    return found


def _transformers_source(
    transformers_dir: Path, index: TreeIndex
) -> tuple[dict[str, str], TreeIndex, dict[str, set[str]]]:
    return (
        registries.transformers_config_mapping(transformers_dir),
        index,
        registries.transformers_architecture_mapping(transformers_dir),
    )


def newer_source(newer: Callable[[], tuple[SourceTree, TreeIndex]]):
    tree, index = newer()
    return _transformers_source(tree.package_dir, index)


@dataclass
class ConfigOrigin:
    """One place config classes come from, loaded on first use: its registry
    (model_type -> class), its index and, for transformers, architecture -> model_types."""

    name: str  # ConfigSource.origin
    under: str  # the package its config modules live under
    load: Callable[[], tuple]

    @cached_property
    def registry(self) -> dict[str, str]:
        return self._loaded[0]

    @cached_property
    def index(self) -> TreeIndex:
        return self._loaded[1]

    @cached_property
    def architectures(self) -> dict[str, set[str]]:
        return self._loaded[2] if len(self._loaded) > 2 else {}

    @cached_property
    def _loaded(self) -> tuple:
        return self.load()

    def definition(self, name: str, classes_only: bool = True) -> tuple[str, str] | None:
        """(module, ConfigSource.defined) of ``name`` (a class, or with ``classes_only`` False any
        definition) under this origin: a definition at run time first (a configuration module
        before model code), else one under ``TYPE_CHECKING`` only."""
        found = sorted(
            (type_checking, is_model_code(module), module)
            for module, kind, type_checking in self.index.definitions(name)
            if (kind == "class" or not classes_only) and module.startswith(self.under)
        )
        if not found:
            return None
        type_checking, in_model_code, module = found[0]
        return module, TYPE_CHECKING_ONLY if type_checking else MODEL_MODULE if in_model_code else CONFIG_MODULE

    def source_of(self, class_name: str) -> ConfigSource | None:
        """The config ``class_name`` stands for, when this origin defines it as a class."""
        found = self.definition(class_name)
        if found is None:
            return None
        module, defined = found
        model_types = [t for t, c in self.registry.items() if c == class_name]
        model_type = model_types[0] if len(model_types) == 1 else _class_model_type(self.index, module, class_name)
        model_type = model_type or (model_types[0] if model_types else None)
        return ConfigSource(model_type, class_name, module, self.name, defined) if model_type else None

    def by_model_type(self, model_type: str) -> ConfigSource | None:
        if model_type not in self.registry:
            return None
        class_name = self.registry[model_type]
        if sum(1 for c in self.registry.values() if c == class_name) > 1:
            # registered under aliases ("unlimited-ocr" and "unlimited_ocr"): the one the class declares
            return self.source_of(class_name)
        found = self.definition(class_name, classes_only=False)
        return ConfigSource(model_type, class_name, found[0], self.name, found[1]) if found else None


@dataclass(frozen=True)
class ConfigCatalog:
    """Where upstream config classes live and which model_type each one carries, origins in the
    order they are asked (upstream vLLM, upstream's transformers, a newer transformers)."""

    origins: list[ConfigOrigin]

    def _first(self, ask: Callable[[ConfigOrigin], ConfigSource | None], origins=None) -> ConfigSource | None:
        for origin in origins if origins is not None else self.origins:
            found = ask(origin)
            if found:
                return found
        return None

    def source_of(self, class_name: str, importing_module: str | None = None) -> ConfigSource | None:
        """The config a class stands for: imported from ``importing_module`` (transformers or
        vLLM), or, without it, wherever an origin defines it."""
        if importing_module is None:
            origins = self.origins
        elif importing_module.startswith("transformers"):
            origins = [o for o in self.origins if o.under.startswith("transformers")]
        else:
            origins = [o for o in self.origins if o.under == "vllm"]
        return self._first(lambda origin: origin.source_of(class_name), origins)

    def by_model_type(self, model_type: str) -> ConfigSource | None:
        """The config registered upstream for ``model_type`` (vLLM's registry first)."""
        return self._first(lambda origin: origin.by_model_type(model_type))

    def by_architecture(self, architecture: str) -> list[ConfigSource]:
        """The configs of the model_types a transformers registry entry names ``architecture``
        under (the first origin that has the entry)."""
        for origin in self.origins:
            model_types = origin.architectures.get(architecture)
            if model_types:
                # one source per class: a class several model_types share carries its own
                classes = {s.class_name for t in sorted(model_types) if (s := origin.by_model_type(t))}
                return [s for c in sorted(classes) if (s := origin.source_of(c))]
        return []


def _resolve_config(
    name: str,
    root: Path,
    paths: list[Path],
    architectures: tuple[Architecture, ...],
    imported: list[tuple[str, str]],
    catalog: ConfigCatalog,
    hf_config: dict | None,
    evidence: dict[str, str],
) -> ConfigSource | None:
    """The top-level model's config (see the module docstring for the order of the evidence)."""
    wanted = (hf_config or {}).get("model_type")
    if wanted:
        evidence["model_type"] = "model_type of the served model's config.json"
        candidates = [s for m, c in imported if (s := catalog.source_of(c, m))]
        source = next((c for c in candidates if c.model_type == wanted), None) or catalog.by_model_type(wanted)
        if source is None:
            raise FlmigrateError(
                f"model_type '{wanted}' from config.json is defined by neither upstream vLLM, "
                "upstream transformers nor a newer transformers release; the served model does not "
                "match this unit (or its config is the checkpoint's own code: drop --served-model)"
            )
        return source
    declared = _received_configs(
        root, paths, architectures, dict((c, m) for m, c in imported), catalog, narrowing=False
    )
    if declared:
        return _one_received(name, *declared, evidence)
    for module, class_name in imported:
        source = catalog.source_of(class_name, module)
        if source is not None and source.model_type == name:
            evidence["model_type"] = f"config class {class_name} imported by the unit ({_where(source)})"
            return source
    source = catalog.by_model_type(name)
    if source:
        evidence["model_type"] = f"'{name}' in the config registry of {_where(source)}"
        return source
    received = _received_configs(root, paths, architectures, dict((c, m) for m, c in imported), catalog, narrowing=True)
    if received:
        return _one_received(name, *received, evidence)
    evidence["model_type"] = REMOTE_CODE
    return None


def _one_received(name: str, architecture: str, sources: list[ConfigSource], evidence: dict[str, str]) -> ConfigSource:
    if len(sources) > 1:
        raise FlmigrateError(
            f"model '{name}': the config of {architecture} is ambiguous: "
            + ", ".join(f"{s.class_name} ({s.model_type})" for s in sources)
            + "; pass --served-model with the model's config.json",
            "each of these is what the architecture class receives (config_class, the hf_config "
            "type it narrows to, or a transformers registry entry naming it)",
        )
    evidence["model_type"] = f"the config {architecture} receives: {sources[0].class_name} ({_where(sources[0])})"
    return sources[0]


def _where(source: ConfigSource) -> str:
    return {"vllm": "upstream vLLM", "transformers": "upstream's transformers"}.get(source.origin, source.origin)


def _received_configs(
    root: Path,
    paths: list[Path],
    architectures: tuple[Architecture, ...],
    imported_from: dict[str, str],
    catalog: ConfigCatalog,
    narrowing: bool,
) -> tuple[str, list[ConfigSource]] | None:
    """(architecture, configs) for the first architecture whose config the source declares
    (``config_class``, ``isinstance``), or with ``narrowing`` the unit narrows vLLM's hf_config
    to or a transformers registry entry names."""
    trees = [tree for path in paths if (tree := parse_module(path)) is not None]
    narrowed = (
        (
            [name for tree in trees for name in _narrowed_hf_configs(tree)]
            or [name for tree in trees for name in _passed_hf_configs(tree)]
        )
        if narrowing
        else []
    )
    for arch in architectures:
        names = narrowed or [n for tree in trees for n in _config_class_names(tree, arch.class_name)]
        sources = [s for n in dict.fromkeys(names) if (s := catalog.source_of(n, imported_from.get(n)))]
        if narrowing and not sources:
            sources = catalog.by_architecture(arch.name) or catalog.by_architecture(arch.class_name)
        if sources:
            return arch.name, list(dict.fromkeys(sources))
    return None


def _annotation_name(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None


def _is_hf_config(node: ast.expr | None) -> bool:
    """``<...>.hf_config`` or ``<...>.get_hf_config()``: the top-level config vLLM hands over."""
    if isinstance(node, ast.Call) and not node.args:
        node = node.func
        return isinstance(node, ast.Attribute) and node.attr == "get_hf_config"
    return isinstance(node, ast.Attribute) and node.attr == "hf_config"


def _config_class_names(tree: ast.Module, class_name: str) -> list[str]:
    """Config classes the class ``class_name`` declares or checks its config against:
    ``config_class = X``, ``assert isinstance(config, X)``."""
    names: list[str | None] = []
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name):
        for node in ast.walk(cls):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "config_class" for t in node.targets
            ):
                names.append(_annotation_name(node.value))
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "isinstance"
                and len(node.args) == 2
                and (getattr(node.args[0], "id", None) or getattr(node.args[0], "attr", None))
                in ("config", "hf_config")
            ):
                names.append(_annotation_name(node.args[1]))
    return [n for n in names if n and n not in _NOT_MODEL_CONFIGS]


def _narrowed_hf_configs(tree: ast.Module) -> list[str]:
    """Config classes the unit narrows vLLM's top-level config to, anywhere in it:
    ``config: X = ....hf_config`` and ``....get_hf_config(X)`` (multimodal processing info)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and _is_hf_config(node.value):
            names.append(_annotation_name(node.annotation))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get_hf_config"
            and len(node.args) == 1
        ):
            names.append(_annotation_name(node.args[0]))
    return [n for n in names if n and n not in _NOT_MODEL_CONFIGS]


def _passed_hf_configs(tree: ast.Module) -> list[str]:
    """Config classes the unit's own classes take vLLM's top-level config as: a name bound to
    ``....hf_config`` passed to a class of the unit whose ``__init__`` annotates that parameter
    (``config = vllm_config.model_config.hf_config`` then ``DecoderLayer(config, ...)`` with
    ``def __init__(self, config: XConfig, ...)``). A sub-config passed on (``config.audio_config``)
    is not the top-level one and does not count."""
    inits = {
        node.name: init.args
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        for init in node.body
        if isinstance(init, ast.FunctionDef) and init.name == "__init__"
    }
    names: list[str | None] = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        bound = {
            target.id
            for node in ast.walk(function)
            if isinstance(node, ast.Assign) and _is_hf_config(node.value)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for call in ast.walk(function) if bound else ():
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in inits):
                continue
            params = inits[call.func.id]
            positional = [*params.posonlyargs, *params.args][1:]  # without self
            by_name = {p.arg: p for p in [*positional, *params.kwonlyargs]}
            for index, argument in enumerate(call.args):
                if isinstance(argument, ast.Name) and argument.id in bound and index < len(positional):
                    names.append(_annotation_name(positional[index].annotation))
            for keyword in call.keywords:
                if isinstance(keyword.value, ast.Name) and keyword.value.id in bound and keyword.arg in by_name:
                    names.append(_annotation_name(by_name[keyword.arg].annotation))
    return [n for n in names if n and n not in _NOT_MODEL_CONFIGS]


def _class_model_type(index: TreeIndex, module: str, class_name: str) -> str | None:
    """The ``model_type = "..."`` class attribute of ``class_name`` in ``module``."""
    tree = parse_module(index.root / index.modules[module].path)
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for statement in node.body:
                targets = (
                    statement.targets if isinstance(statement, ast.Assign) else [getattr(statement, "target", None)]
                )
                if (
                    isinstance(statement, (ast.Assign, ast.AnnAssign))
                    and any(isinstance(t, ast.Name) and t.id == "model_type" for t in targets)
                    and isinstance(statement.value, ast.Constant)
                    and isinstance(statement.value.value, str)
                ):
                    return statement.value.value
    return None


def load_hf_config(served_model: str | None) -> dict | None:
    """The served model's ``config.json``: from a directory, or from the hub (offline-capable)."""
    if not served_model:
        return None
    path = Path(served_model).expanduser()
    if path.is_dir():
        config = path / "config.json"
        if not config.exists():
            raise FlmigrateError(f"--served-model {served_model}: no config.json in this directory")
        return json.loads(config.read_text(encoding="utf-8"))
    if path.exists() or served_model.startswith(("/", ".")):
        raise FlmigrateError(f"--served-model {served_model}: not a model directory")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return json.loads(Path(hf_hub_download(served_model, "config.json")).read_text(encoding="utf-8"))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise FlmigrateError(
            f"--served-model {served_model}: config.json not in the local hub cache and the hub "
            "is unreachable; pass a local model directory",
            str(exc),
        ) from None


def pooling_task(architectures: Iterable[Architecture]) -> str | None:
    """The pooling task of registry entries when every one is a pooling model's (the first's task),
    else None: an architecture the registry also lists for text generation (``Qwen2ForCausalLM``
    is an embedding model too, converted on request) is served as a generating model."""
    tasks = [arch.pooling_task for arch in architectures]
    return tasks[0] if tasks and all(tasks) else None
