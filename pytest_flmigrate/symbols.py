"""A static index of a Python source tree: its modules and the names each defines or imports.

Built with ``ast`` from source (nothing is imported), cached on disk keyed by the tree's
package, version and a hash of its sources.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock

from pytest_flmigrate import sources
from pytest_flmigrate.sources import SourceTree

INDEX_FORMAT = 1


@dataclass
class ModuleInfo:
    """One module: names defined at top level (name -> kind) and imported (name -> origin)."""

    path: str
    is_package: bool
    defines: dict[str, str] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        return set(self.defines) | set(self.imports)


@dataclass
class TreeIndex:
    root: Path
    package: str
    version: str
    modules: dict[str, ModuleInfo]

    def has_module(self, name: str) -> bool:
        return name in self.modules

    def provides(self, module: str, name: str) -> bool:
        """Whether ``from module import name`` can work: a top-level name or a submodule."""
        info = self.modules.get(module)
        if info is None:
            return False
        return name in info.names or f"{module}.{name}" in self.modules

    def defining_modules(self, name: str, under: str = "") -> list[str]:
        """Modules under the dotted prefix ``under`` that define ``name`` (class, def, assign)."""
        return sorted(
            module
            for module, info in self.modules.items()
            if module.startswith(under) and name in info.defines
        )


def module_name(relative: Path) -> tuple[str, bool]:
    """``vllm/a/b.py`` -> (``vllm.a.b``, False); ``vllm/a/__init__.py`` -> (``vllm.a``, True)."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def parse_module(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return None


def _module_info(relative: Path, tree: ast.Module, is_package: bool, module: str) -> ModuleInfo:
    info = ModuleInfo(path=str(relative), is_package=is_package)
    package = module if is_package else module.rpartition(".")[0]
    for node in _top_level(tree.body):
        if isinstance(node, ast.ClassDef):
            info.defines[node.name] = "class"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            info.defines[node.name] = "function"
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        info.defines.setdefault(name.id, "assign")
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(package, node.level, node.module)
            for alias in node.names:
                if alias.name != "*":
                    info.imports[alias.asname or alias.name] = f"{origin}:{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                info.imports[alias.asname or alias.name.split(".")[0]] = alias.name
    return info


def _top_level(body: list[ast.stmt]):
    """Statements at module level, looking inside if/try blocks (guarded imports)."""
    for node in body:
        if isinstance(node, ast.If):
            yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            yield from _top_level(node.body)
            for handler in node.handlers:
                yield from _top_level(handler.body)
            yield from _top_level(node.orelse)
        else:
            yield node


def _absolute(package: str, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".")
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    base = ".".join(parts)
    return f"{base}.{module}" if module else base


def _sources_digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def build_index(tree: SourceTree) -> TreeIndex:
    """Index every module of ``tree``'s package, from the disk cache when unchanged."""
    files = sorted(tree.package_dir.rglob("*.py"))
    digest = _sources_digest(files)
    cache = sources.cache_dir() / "index" / f"{tree.package}-{tree.version}-{digest}.json"
    if cache.exists():
        return _load(cache, tree.root)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache) + ".lock"):
        if cache.exists():
            return _load(cache, tree.root)
        modules: dict[str, ModuleInfo] = {}
        for file in files:
            relative = file.relative_to(tree.root)
            name, is_package = module_name(relative)
            parsed = parse_module(file)
            modules[name] = (
                _module_info(relative, parsed, is_package, name)
                if parsed
                else ModuleInfo(path=str(relative), is_package=is_package)
            )
        index = TreeIndex(root=tree.root, package=tree.package, version=tree.version, modules=modules)
        payload = {"format": INDEX_FORMAT, "package": index.package, "version": index.version,
                   "modules": {name: asdict(info) for name, info in modules.items()}}
        temporary = cache.with_suffix(".tmp")
        temporary.write_text(json.dumps(payload), encoding="utf-8")
        temporary.replace(cache)
        return index


def _load(cache: Path, root: Path) -> TreeIndex:
    payload = json.loads(cache.read_text(encoding="utf-8"))
    modules = {name: ModuleInfo(**info) for name, info in payload["modules"].items()}
    return TreeIndex(root=root, package=payload["package"], version=payload["version"], modules=modules)
