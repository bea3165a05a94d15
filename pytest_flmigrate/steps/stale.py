"""What a model's re-migration no longer needs (a pin bump above all), decided before step 4 writes.

A file is *stale* when the manifest holds it for the model being migrated (or it is a compat
module, shared by every model), the new plan does not write it, and no other file of the plugin
imports it: not another model's file, not a hand-made one, not ``register_model()`` outside the
model's own blocks, not a compat module one of those needs. Step 4 removes stale files (hand edits
backed up first) and says why. :func:`unimported_compat` asks it of the compat modules the plan
itself writes (a patch may take away their only use). :func:`used_compat_names` is the same
question for the definitions of a compat module the plan still writes: only those the rest of the
plugin imports are kept.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

from pytest_flmigrate.index.file_imports import ImportRef, imports_of
from pytest_flmigrate.index.symbols import parse_source
from pytest_flmigrate.layout import PLUGIN_PACKAGE, REGISTRATION_FILE
from pytest_flmigrate.manifest import Manifest


def module_of(target: str) -> tuple[str, bool]:
    """``vllm_fl/compat/a/b.py`` -> (``vllm_fl.compat.a.b``, False); a package ``__init__.py`` -> True."""
    parts = list(Path(target).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _refs(text: str, target: str) -> list[ImportRef]:
    module, is_package = module_of(target)
    return imports_of(text, module, is_package)


def _imported_modules(refs: Iterable[ImportRef]) -> set[str]:
    found: set[str] = set()
    for ref in refs:
        found.add(ref.module)
        if ref.name not in (None, "*"):
            found.add(f"{ref.module}.{ref.name}")
    return found


def owned(manifest: Manifest, model: str) -> set[str]:
    """The files the manifest holds for ``model`` (its model, sibling and config files)."""
    return {target for target, entry in manifest.entries.items() if entry.get("model") == model}


def compat_files(manifest: Manifest) -> set[str]:
    return {target for target, entry in manifest.entries.items() if entry.get("role") == "compat"}


def other_refs(manifest: Manifest, model: str, own_keys: Iterable[str]) -> list[ImportRef]:
    """The imports of every file of the plugin but the model's own and the compat modules:
    other models' files, hand-made ones, and ``register_model()`` without the model's blocks
    (a statement naming one of ``own_keys``, its architectures or model_type, as a string)."""
    skip = owned(manifest, model) | compat_files(manifest) | {REGISTRATION_FILE}
    refs: list[ImportRef] = []
    root = manifest.plugin_dir
    for path in sorted((root / PLUGIN_PACKAGE).rglob("*.py")):
        target = str(path.relative_to(root))
        if target in skip:
            continue
        refs += _refs(_read(path), target)
    init = _read(root / REGISTRATION_FILE)
    tree = parse_source(init)
    if tree is None:
        return refs + _refs(init, REGISTRATION_FILE)  # unreadable: every import it has counts
    keys = set(own_keys)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "register_model":
            node.body = [statement for statement in node.body if not _names_a_key(statement, keys)]
    return refs + imports_of(tree, PLUGIN_PACKAGE, True)


def _names_a_key(statement: ast.stmt, keys: set[str]) -> bool:
    return any(isinstance(n, ast.Constant) and n.value in keys for n in ast.walk(statement))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def stale_files(manifest: Manifest, model: str, written: Mapping[str, str], own_keys: Iterable[str]) -> list[str]:
    """The files of ``model`` and the compat modules the plan (``written``: target -> the text
    step 4 writes) no longer writes and nothing else of the plugin imports, in manifest order."""
    candidates = {target for target in (owned(manifest, model) | compat_files(manifest)) if target not in written}
    texts = {target: _read(manifest.plugin_dir / target) for target in candidates}
    live = _reached(manifest, model, written, own_keys, texts)
    return [target for target in manifest.entries if target in candidates and target not in live]


def unimported_compat(
    manifest: Manifest, model: str, written: Mapping[str, str], compat: Iterable[str], own_keys: Iterable[str]
) -> set[str]:
    """The compat modules among ``compat`` (targets of ``written``) that nothing imports: not the
    plan's other files, not the rest of the plugin, not a compat module one of those needs. A
    patch may take away the only use of what the plan backported (P22 drops the annotation that
    needed transformers' ``RopeParameters``): step 4 does not write such a module."""
    compat = set(compat)
    roots = {target: text for target, text in written.items() if target not in compat}
    live = _reached(manifest, model, roots, own_keys, {target: written[target] for target in compat})
    return compat - live


def _reached(
    manifest: Manifest, model: str, roots: Mapping[str, str], own_keys: Iterable[str], texts: Mapping[str, str]
) -> set[str]:
    """The targets of ``texts`` (target -> its text) imported by ``roots`` (target -> text) or by
    the rest of the plugin (other_refs), directly or through each other; a package is reached
    with any module inside it."""
    by_module = {module_of(target)[0]: target for target in texts}
    live: set[str] = set()
    queue = _imported_modules(other_refs(manifest, model, own_keys))
    for target, text in roots.items():
        queue |= _imported_modules(_refs(text, target))
    while queue:
        module = queue.pop()
        reached = by_module.get(module)
        if "." in module:
            queue.add(module.rsplit(".", 1)[0])
        if reached is None or reached in live:
            continue
        live.add(reached)
        queue |= _imported_modules(_refs(texts[reached], reached))
    return live


def used_compat_names(
    manifest: Manifest, model: str, own_keys: Iterable[str], rewritten: Iterable[str] = ()
) -> dict[str, set[str]]:
    """Plugin compat module -> the names the rest of the plugin imports from it: files other than
    the model's own, the compat modules the migration leaves as they are (all but ``rewritten``,
    the compat targets it writes: a compat module another model's migration wrote needs what it
    imports from the ones this one rewrites), plus what the model's files import that their
    generated text did not (a hand edit may import a compat name the new plan does not need)."""
    refs = other_refs(manifest, model, own_keys)
    for target in sorted(compat_files(manifest) - set(rewritten)):
        refs += _refs(_read(manifest.plugin_dir / target), target)
    for target in owned(manifest, model):
        base = manifest.base(target)
        current = _read(manifest.plugin_dir / target)
        if base is not None and current != base:
            generated = {(ref.module, ref.name) for ref in _refs(base, target)}
            refs += [ref for ref in _refs(current, target) if (ref.module, ref.name) not in generated]
    found: dict[str, set[str]] = {}
    for ref in refs:
        if ref.name not in (None, "*") and ref.module.startswith(f"{PLUGIN_PACKAGE}.compat"):
            found.setdefault(ref.module, set()).add(ref.name)
    return found
