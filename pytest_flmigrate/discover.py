"""The model unit and its placeholders, resolved from upstream source (never guessed).

A unit is ``vllm/model_executor/models/<name>.py`` or a package ``vllm/models/<name>/``.
Architectures come from upstream's model registry; ``model_type`` and the config class from
the config classes the unit imports, upstream's config registry and transformers' mapping,
or a HF ``config.json`` when one is given; the display name from the module docstring.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pytest_flmigrate import registries
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.registries import Architecture
from pytest_flmigrate.sources import SourceTree
from pytest_flmigrate.resolve import imports_of
from pytest_flmigrate.symbols import TreeIndex, module_name, parse_module

MODELS_DIR = Path("model_executor/models")
PACKAGES_DIR = Path("models")
_CONFIG_MODULE_PREFIXES = ("transformers", "vllm.transformers_utils.configs", "vllm.models.")
_NOT_MODEL_CONFIGS = {"PretrainedConfig", "PreTrainedConfig", "GenerationConfig"}
_DOCSTRING_NAME = re.compile(r"(?:Inference-only|PyTorch)\s+(.+?)\s+model", re.IGNORECASE)
_ARCH_SUFFIXES = ("ForConditionalGeneration", "ForCausalLM", "Model", "MTP")


@dataclass(frozen=True)
class ConfigSource:
    """Where the unit's config class lives upstream."""

    model_type: str
    class_name: str
    module: str  # e.g. vllm.transformers_utils.configs.step3p5 or transformers.models.x.configuration_x
    origin: str  # "vllm" or "transformers"


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

    def placeholders(self) -> dict[str, object]:
        return {
            "model_name": self.name,
            "model_name_lower": self.name.lower(),
            "MODEL_DISPLAY_NAME": self.display_name,
            "ModelClassName": self.class_names[0],
            "ModelClassNames": list(self.class_names),
            "model_type": self.config.model_type if self.config else None,
            "ConfigClassName": self.config.class_name if self.config else None,
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
        p.stem for p in (upstream_dir / MODELS_DIR).glob("*.py")
        if p.name not in pinned and p.name != "__init__.py"
    )


def find_unit(
    upstream: SourceTree,
    upstream_index: TreeIndex,
    transformers_index: TreeIndex,
    transformers_dir: Path,
    name: str,
    hf_config: dict | None = None,
) -> ModelUnit:
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
        registries.vllm_config_registry(vllm_dir),
        registries.transformers_config_mapping(transformers_dir),
        upstream_index,
        transformers_index,
    )
    candidates = [
        source
        for importing, class_name in _imported_config_classes(upstream.root, paths)
        if (source := catalog.source_of(class_name, importing))
    ]
    config = _resolve_config(name, candidates, catalog, hf_config, evidence)
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


@dataclass(frozen=True)
class ConfigCatalog:
    """Where upstream config classes live and which model_type each one carries."""

    vllm_registry: dict[str, str]  # model_type -> class, vLLM's _CONFIG_REGISTRY
    transformers_mapping: dict[str, str]  # model_type -> class, transformers' CONFIG_MAPPING_NAMES
    vllm_index: TreeIndex
    transformers_index: TreeIndex

    def source_of(self, class_name: str, importing_module: str) -> ConfigSource | None:
        """The config a class imported from ``importing_module`` stands for, if it is one."""
        if importing_module.startswith("transformers"):
            index, under, registry, origin = self.transformers_index, "transformers.models", self.transformers_mapping, "transformers"
        else:
            index, under, registry, origin = self.vllm_index, "vllm", self.vllm_registry, "vllm"
        defining = [m for m in index.defining_modules(class_name, under) if index.modules[m].defines[class_name] == "class"]
        if not defining:
            return None
        model_types = [t for t, c in registry.items() if c == class_name]
        model_type = model_types[0] if len(model_types) == 1 else _class_model_type(index, defining[0], class_name)
        model_type = model_type or (model_types[0] if model_types else None)
        return ConfigSource(model_type, class_name, defining[0], origin) if model_type else None

    def by_model_type(self, model_type: str) -> ConfigSource | None:
        """The config registered upstream for ``model_type`` (vLLM's registry first)."""
        for registry, index, under, origin in (
            (self.vllm_registry, self.vllm_index, "vllm", "vllm"),
            (self.transformers_mapping, self.transformers_index, "transformers.models", "transformers"),
        ):
            if model_type in registry:
                defining = index.defining_modules(registry[model_type], under)
                if defining:
                    return ConfigSource(model_type, registry[model_type], defining[0], origin)
        return None


def _resolve_config(
    name: str, candidates: list[ConfigSource], catalog: ConfigCatalog, hf_config: dict | None,
    evidence: dict[str, str],
) -> ConfigSource | None:
    """The unit's config: config.json's model_type, else the model's own name, else the closest."""
    wanted = (hf_config or {}).get("model_type")
    if wanted:
        evidence["model_type"] = "model_type of the served model's config.json"
        source = next((c for c in candidates if c.model_type == wanted), None) or catalog.by_model_type(wanted)
        if source is None:
            raise FlmigrateError(
                f"model_type '{wanted}' from config.json is known to neither upstream vLLM's config "
                "registry nor upstream transformers; the served model does not match this unit"
            )
        return source
    for source in candidates:
        if source.model_type == name:
            evidence["model_type"] = f"config class {source.class_name} imported by the unit"
            return source
    source = catalog.by_model_type(name)
    if source:
        evidence["model_type"] = f"'{name}' in upstream's {source.origin} config registry"
        return source
    if candidates:
        best = max(candidates, key=lambda s: difflib.SequenceMatcher(None, s.model_type, name).ratio())
        evidence["model_type"] = (
            f"config class {best.class_name} imported by the unit (closest of "
            f"{', '.join(c.model_type for c in candidates)})"
        )
        return best
    evidence["model_type"] = "no config class imported and none registered under this name"
    return None


def _class_model_type(index: TreeIndex, module: str, class_name: str) -> str | None:
    """The ``model_type = "..."`` class attribute of ``class_name`` in ``module``."""
    tree = parse_module(index.root / index.modules[module].path)
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for statement in node.body:
                targets = statement.targets if isinstance(statement, ast.Assign) else [getattr(statement, "target", None)]
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
            "is unreachable; pass a local model directory", str(exc),
        ) from None
