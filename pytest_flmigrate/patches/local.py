"""The plugin's own patches: modules with the catalog's interface, kept in a folder of the checkout.

The catalog will never know every gap between upstream and a plugin's pin. A plugin checkout
names a folder (``local-patches = "flmigrate_patches"`` in ``[tool.flmigrate]``); every module
there whose name does not start with ``_`` is a patch, loaded as the catalog's are (``ID``,
``NAME``, ``PINNED``, ``Transformer``, a docstring with What/Why/When, optional ``relevant``,
``rewritten_imports``, ``added_imports``, and for a translation ``TRANSLATION``, ``refusal`` and
``pin_gap``),
applied after the catalog in file-name order and reviewed like any migrated code; a use a
translation of the plugin's leaves alone refuses the migration at step 4, as the catalog's do.
Modules starting with ``_`` are helpers the patches may import relatively (``from ._tables import X``).

A module that fails to import or breaks the interface is refused with one line naming it;
ids are the plugin's own (letters and a number, never the catalog's ``P<n>``) and unique.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from pytest_flmigrate.errors import FlmigrateError

from .base import Patch, PatchTransformer, patch_from_module

OPTION = "local-patches"
LOCAL_ID = re.compile(r"[A-Z]+\d+")
CATALOG_ID = re.compile(r"P\d+")
PATCH_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
INTERFACE = "a patch module defines ID, NAME, PINNED, Transformer and a What/Why/When docstring, as the catalog's do"


def load_local_patches(folder: Path, plugin_dir: Path, catalog: tuple[Patch, ...]) -> tuple[Patch, ...]:
    """The patches of ``folder`` (a folder of the plugin checkout ``plugin_dir``), in file-name
    order, each checked against the interface; ``catalog``'s ids and names are taken."""
    where = _shown(folder, plugin_dir)
    if not folder.is_dir():
        raise FlmigrateError(
            f"--{OPTION} {where}: no such folder in the plugin checkout; create it with the plugin's patch "
            "modules, or drop the option"
        )
    paths = sorted(path for path in folder.glob("*.py") if not path.name.startswith("_"))
    if not paths:
        raise FlmigrateError(
            f"--{OPTION} {where}: the folder holds no patch module (*.py not starting with _); add one, "
            "or drop the option"
        )
    package = _package(folder)
    taken_ids = {patch.id: "the catalog" for patch in catalog}
    taken_names = {patch.name: f"the catalog's {patch.id}" for patch in catalog}
    patches = []
    for path in paths:
        shown = _shown(path, plugin_dir)
        patch = _patch(_import(path, package, shown), shown)
        if patch.id in taken_ids:
            raise FlmigrateError(f"{shown}: ID {patch.id!r} is taken by {taken_ids[patch.id]}; give it another id")
        if patch.name in taken_names:
            raise FlmigrateError(
                f"{shown}: NAME {patch.name!r} is taken by {taken_names[patch.name]}; give it another name"
            )
        taken_ids[patch.id] = shown
        taken_names[patch.name] = f"{shown} ({patch.id})"
        patches.append(patch)
    return tuple(patches)


def _shown(path: Path, plugin_dir: Path) -> str:
    try:
        return path.resolve().relative_to(plugin_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def _package(folder: Path) -> str:
    """A fresh package for ``folder``'s modules (relative imports between them work); a name of
    its own per folder, and earlier loads of the same folder forgotten so edits are seen."""
    name = "_flmigrate_local_" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    for loaded in [module for module in sys.modules if module == name or module.startswith(name + ".")]:
        del sys.modules[loaded]
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    return name


def _import(path: Path, package: str, shown: str) -> ModuleType:
    name = f"{package}.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"{path}: a .py file has a loader"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the plugin's code: whatever it raises is named in one line
        del sys.modules[name]
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise FlmigrateError(
            f"{shown}: the patch module fails to import: {type(exc).__name__}: {first}; fix it or move it "
            "out of the folder"
        ) from None
    return module


def _patch(module: ModuleType, shown: str) -> Patch:
    """The :class:`Patch` ``module`` declares, or one line naming what breaks the interface."""

    def broken(what: str) -> FlmigrateError:
        return FlmigrateError(f"{shown}: {what} ({INTERFACE})")

    for attribute in ("ID", "NAME", "PINNED", "Transformer"):
        if not hasattr(module, attribute):
            raise broken(f"no {attribute}")
    if not isinstance(module.ID, str) or not LOCAL_ID.fullmatch(module.ID) or CATALOG_ID.fullmatch(module.ID):
        raise broken(f"ID {module.ID!r} is not a plugin patch id: capital letters and a number, not P<n> (L1, FL2)")
    if not isinstance(module.NAME, str) or not PATCH_NAME.fullmatch(module.NAME):
        raise broken(f"NAME {module.NAME!r} is not lower-case words joined by '-' (rope-scaling)")
    try:
        SpecifierSet(module.PINNED)
    except (InvalidSpecifier, TypeError):
        raise broken(f"PINNED {module.PINNED!r} is not a version range (such as '<0.15' or '>=0')") from None
    if not (isinstance(module.Transformer, type) and issubclass(module.Transformer, PatchTransformer)):
        raise broken("Transformer is not a subclass of pytest_flmigrate.patches.base.PatchTransformer")
    for hook in ("relevant", "rewritten_imports", "added_imports", "refusal", "pin_gap"):
        if hasattr(module, hook) and not callable(getattr(module, hook)):
            raise broken(f"{hook} is not a function")
    if hasattr(module, "SHIM"):
        raise broken("SHIM names a shim of the catalog; a plugin patch imports from the plugin's own vllm_fl instead")
    why = docstring_problem(module.__doc__ or "", module.ID)
    if why:
        raise broken(why)
    return patch_from_module(module, source=shown)


def docstring_problem(doc: str, patch_id: str) -> str | None:
    """Why ``doc`` is not a patch docstring (``<ID>: summary``, a blank line, then paragraphs
    starting ``What:``, ``Why:`` and ``When:`` in that order), or None."""
    lines = doc.strip().splitlines()
    if not lines or not lines[0].startswith(f"{patch_id}: "):
        return f"the docstring does not start with '{patch_id}: <summary>'"
    if len(lines) < 2 or lines[1].strip():
        return "the docstring's summary line is not followed by a blank line"
    heads = [line.split(":")[0] for line in lines[2:] if re.match(r"(What|Why|When): ", line)]
    if heads != ["What", "Why", "When"]:
        return "the docstring lacks its What:, Why: and When: paragraphs (in that order)"
    return None
