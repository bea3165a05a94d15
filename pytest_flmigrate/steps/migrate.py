"""Copy-then-patch: which upstream modules land in the plugin, and writing them safely.

The closure starts at the model unit and follows its imports: a module the pinned vLLM has
stays ``vllm.*`` (or points at the plugin's own copy when the plugin has one); a model or
config module that is new upstream is migrated too, transitively, as ``vllm_fl.*``.
"""

from __future__ import annotations

import difflib
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_flmigrate.autofix import compat_source
from pytest_flmigrate.autofix.backport import compat_module
from pytest_flmigrate.autofix.bridge import Bridge, bridge_name_map
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index.file_imports import imports_of
from pytest_flmigrate.index.pinned import Pinned
from pytest_flmigrate.index.records import TreeIndex
from pytest_flmigrate.index.registries import CONFIG_HOOKS_MODULE
from pytest_flmigrate.index.symbols import module_info_from_source, parse_module
from pytest_flmigrate.layout import PLUGIN_PACKAGE, REGISTRATION_FILE, plugin_module_for
from pytest_flmigrate.manifest import Manifest, atomic_write, sha256, write_if_changed
from pytest_flmigrate.patches.base import Patch, PatchContext, apply_patches
from pytest_flmigrate.steps import hand_edits, stale
from pytest_flmigrate.steps.discover import ModelUnit

MAX_CLOSURE = 40


@dataclass(frozen=True)
class PlannedFile:
    upstream_module: str
    source: Path
    plugin_module: str
    is_package: bool
    role: str  # "model", "sibling", "config" or "compat"
    compat: compat_source.CompatSpec | None = None  # role compat: what of the upstream module is kept
    text: str | None = (
        None  # a module step 4 generates (``vllm_fl/compat/envs.py``): its text, in place of ``source``'s
    )

    @property
    def target(self) -> str:
        path = self.plugin_module.replace(".", "/")
        return f"{path}/__init__.py" if self.is_package else f"{path}.py"


@dataclass
class MigrationPlan:
    unit: ModelUnit
    files: list[PlannedFile]
    module_map: dict[str, str]
    name_map: dict[tuple[str, str], str]
    bridge: Bridge | None
    bridge_reason: str
    plugin_provided: dict[str, str] = field(default_factory=dict)
    # step 4's automatic fixes (autofix.plan_fixes): imports relocated in the pin (P15), names
    # backported into vllm_fl/compat (P16), and the imports left for step 6 with the reason
    # (a drifting call left is keyed by its pinned callee: ("module.Class", member))
    relocations: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    backports: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    unfixed: dict[tuple[str, str], str] = field(default_factory=dict)
    # signature drift the base's backport does not fix: keywords P23 drops (see PatchContext)
    forwarded_defaults: dict[str, frozenset[tuple[str, str, str]]] = field(default_factory=dict)
    # class attributes read at import that the pin's class lacks: (module, class, member) -> the
    # pin's expression of the same value (P34)
    import_time_members: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # the vllm.envs flags upstream has and the pin lacks, at upstream's defaults (P25)
    env_flags: dict[str, Any] = field(default_factory=dict)
    # model_types the pinned transformers' CONFIG_MAPPING knows (P22 builds sub-configs by them)
    transformers_model_types: frozenset[str] = frozenset()
    # model_type the pinned transformers lacks -> (module, class) that builds a bridge's AutoConfig
    # sub-config of that type (P22)
    sub_config_classes: dict[str, tuple[str, str]] = field(default_factory=dict)
    # files whose use of an API a translation leaves alone: target -> "path:line: why (patch)";
    # step 4 refuses the migration, writing nothing
    refused: dict[str, str] = field(default_factory=dict)
    # architecture -> upstream's config hook (MODELS_CONFIG_MAP) backported for it into
    # vllm_fl/compat/model_executor/models/config.py, which step 5 registers
    config_hooks: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FileResult:
    target: str
    role: str
    # created, updated, unchanged, kept (hand edit, upstream unchanged), merged, forced, or
    # dropped (a file of an earlier migration nothing needs any more: ``reason`` says why)
    status: str
    sha256: str
    patches: dict[str, int]
    backup: str | None = None
    adaptation: str | None = None  # the adaptation patch beside the file, when it has one
    replayed: tuple[str, ...] = ()  # hunks of the adaptation replayed onto a new upstream
    adaptation_backup: str | None = None  # the adaptation patch --force deleted, backed up
    reason: str | None = None  # why a file was dropped
    dropped_patches: tuple[tuple[str, str], ...] = ()  # (patch id, why) the file's last migration applied


@dataclass(frozen=True)
class _Decision:
    planned: PlannedFile
    generated: str
    written: str
    status: str
    patches: dict[str, int]
    dropped_patches: tuple[tuple[str, str], ...] = ()


def _package_modules(index: TreeIndex, package: str) -> list[str]:
    return sorted(m for m in index.modules if m == package or m.startswith(package + "."))


def _referenced_modules(path: Path, module: str, is_package: bool, index: TreeIndex) -> list[str]:
    """The vllm modules a file imports, and the submodules its ``from`` imports name."""
    tree = parse_module(path)
    found: list[str] = []
    for ref in imports_of(tree, module, is_package) if tree else ():
        found.append(ref.module)
        if ref.name is not None and f"{ref.module}.{ref.name}" in index.modules:
            found.append(f"{ref.module}.{ref.name}")
    return [m for m in dict.fromkeys(found) if m.startswith("vllm.")]


def plan_migration(
    unit: ModelUnit,
    upstream_index: TreeIndex,
    pinned: Pinned,
    plugin_dir: Path,
    bridge: Bridge | None,
    bridge_reason: str,
    bridge_index: TreeIndex | None,
) -> MigrationPlan:
    """Every file the migration writes, and the module/name maps the patches use."""
    files: list[PlannedFile] = []
    module_map: dict[str, str] = {}
    plugin_provided: dict[str, str] = {}

    def add(module: str, role: str) -> None:
        info = upstream_index.modules[module]
        plugin_module = plugin_module_for(module)
        assert plugin_module is not None, f"{module}: only migratable modules are planned"
        module_map[module] = plugin_module
        files.append(PlannedFile(module, upstream_index.root / info.path, plugin_module, info.is_package, role))

    # what the plugin holds for this model from an earlier migration is not "the plugin's own copy"
    ours = stale.owned(Manifest(plugin_dir), unit.name)
    root = unit.module
    for module in _package_modules(upstream_index, root) if unit.is_package else [root]:
        add(module, "model")
    queue = list(files)
    while queue:
        current = queue.pop(0)
        for referenced in _referenced_modules(
            current.source, current.upstream_module, current.is_package, upstream_index
        ):
            if referenced in module_map or referenced in plugin_provided:
                continue
            plugin_module = plugin_module_for(referenced)
            if plugin_module is None:
                continue
            plugin_file = plugin_module.replace(".", "/") + ".py"
            if pinned.index.has_module(referenced):
                if (plugin_dir / plugin_file).exists() and plugin_file not in ours:
                    plugin_provided[referenced] = plugin_module
                continue
            if referenced not in upstream_index.modules:
                continue
            package = _top_package(referenced)
            for module in _package_modules(upstream_index, package) if package else [referenced]:
                if module not in module_map:
                    role = "config" if module.startswith("vllm.transformers_utils.configs.") else "sibling"
                    add(module, role)
                    queue.append(files[-1])
            if len(files) > MAX_CLOSURE:
                raise FlmigrateError(
                    f"model '{unit.name}' pulls in more than {MAX_CLOSURE} new upstream modules; "
                    "port it by hand or migrate its dependencies first",
                    "closure so far: " + ", ".join(f.upstream_module for f in files),
                )
    name_map: dict[tuple[str, str], str] = {}
    if bridge is not None and not bridge.in_place:
        assert bridge_index is not None, "a bridge comes with the index defining its config"
        info = bridge_index.modules[bridge.upstream_module]
        module_map[bridge.upstream_module] = bridge.plugin_module
        files.append(
            PlannedFile(bridge.upstream_module, bridge_index.root / info.path, bridge.plugin_module, False, "config")
        )
        name_map = bridge_name_map(bridge)
    module_map.update(plugin_provided)
    known = frozenset(t for t, where in pinned.known_model_types.items() if where == "transformers")
    return MigrationPlan(
        unit, files, module_map, name_map, bridge, bridge_reason, plugin_provided, transformers_model_types=known
    )


def _top_package(module: str) -> str | None:
    """``vllm.models.kimi_k3.amd.x`` -> ``vllm.models.kimi_k3`` (packages migrate whole)."""
    if module.startswith("vllm.models."):
        return ".".join(module.split(".")[:3])
    return None


def patched_texts(
    plan: MigrationPlan, patches: tuple[Patch, ...], pinned: Pinned
) -> dict[str, tuple[str, dict[str, int]]]:
    """target -> (migrated text, rewrites per patch), computed without touching the plugin."""
    return {
        planned.target: apply_patches(source_text(planned), patches, patch_context(plan, planned, pinned))
        for planned in plan.files
    }


def source_text(planned: PlannedFile) -> str:
    """The text the patches start from: the upstream file (or the generated text), for a compat
    module the upstream module pruned to the definitions kept."""
    source = upstream_text(planned)
    return compat_source.compat_text(planned, source) if planned.compat is not None else source


def upstream_text(planned: PlannedFile) -> str:
    """What ``planned`` comes from: the upstream file, or the text step 4 generated."""
    return planned.text if planned.text is not None else planned.source.read_text(encoding="utf-8")


def patch_context(plan: MigrationPlan, planned: PlannedFile, pinned: Pinned) -> PatchContext:
    """What the patches know about ``planned``: its upstream module, the pin and the plan's maps."""
    return PatchContext(
        module=planned.upstream_module,
        pinned_version=pinned.version,
        pinned_transformers=pinned.transformers_version,
        is_package=planned.is_package,
        module_map=plan.module_map,
        name_map=plan.name_map,
        relocations=plan.relocations,
        backports=plan.backports,
        forwarded_defaults=plan.forwarded_defaults,
        env_flags=plan.env_flags,
        import_time_members=plan.import_time_members,
        transformers_model_types=plan.transformers_model_types,
        sub_config_classes=plan.sub_config_classes,
    )


def without_unimported_compat(
    plan: MigrationPlan, texts: dict[str, tuple[str, dict[str, int]]], plugin_dir: Path, own_keys: Iterable[str] = ()
) -> MigrationPlan:
    """``plan`` without the compat modules nothing imports once patched (stale.py): a patch may take
    away the only use of what the plan backported, and such a module is neither written, imported
    nor reviewed."""
    written = {planned.target: texts[planned.target][0] for planned in plan.files}
    if plan.config_hooks:  # step 5 registers the copied hooks: register_model() imports them
        written[REGISTRATION_FILE] = "".join(
            f"from {compat_module(CONFIG_HOOKS_MODULE)} import {hook}\n" for hook in plan.config_hooks.values()
        )
    unimported = stale.unimported_compat(
        Manifest(plugin_dir),
        plan.unit.name,
        written,
        [planned.target for planned in plan.files if planned.role == "compat"],
        own_keys,
    )
    if not unimported:
        return plan
    return replace(plan, files=[planned for planned in plan.files if planned.target not in unimported])


def write_migration(
    plan: MigrationPlan,
    texts: dict[str, tuple[str, dict[str, int]]],
    plugin_dir: Path,
    report_dir: Path,
    upstream_label: str,
    force: bool,
    pinned: Pinned | None = None,
    own_keys: Iterable[str] = (),
) -> list[FileResult]:
    """Write every migrated file, replaying hand edits onto the new upstream, and drop the files
    of the model's earlier migration that nothing needs any more (stale.py: a pin bump makes
    compat modules, config bridges and siblings the new pin has stale; hand edits of a dropped
    file are backed up first).

    All files are decided before any is written: a file the tool never wrote (without
    ``force``) or a hand edit that conflicts with the new upstream fails the whole step and
    leaves the plugin untouched; conflicted merges go to ``report_dir/conflicts/``.
    ``own_keys``: the model's architectures and model_type (its blocks of register_model()).
    """
    manifest = Manifest(plugin_dir)
    decisions, refused, conflicts = [], [], []
    for planned in plan.files:
        generated, counts = texts[planned.target]
        before = manifest.entries.get(planned.target, {}).get("patches", {})
        dropped = _dropped_patches(before, counts, plan, planned, pinned)
        current_path = plugin_dir / planned.target
        current = current_path.read_text(encoding="utf-8") if current_path.exists() else None
        base = manifest.base(planned.target)
        if current == "" and base is None and planned.role == "compat":
            current = None  # an empty package marker the tool made for a compat folder
        if current is None or current == generated:
            status = "created" if current is None else "unchanged"
            decisions.append(_Decision(planned, generated, generated, status, counts, dropped))
        elif force and current != base:
            decisions.append(_Decision(planned, generated, generated, "forced", counts, dropped))
        elif base is None:
            refused.append(planned.target)
        else:
            merged = hand_edits.merge(current, base, generated)
            if not merged.clean:
                conflict_file = report_dir / "conflicts" / planned.target
                atomic_write(conflict_file, merged.text)
                conflicts.append((planned.target, f"{', '.join(merged.conflicts)}; merge in {conflict_file}"))
                continue
            status = "updated" if current == base else ("kept" if generated == base else "merged")
            decisions.append(_Decision(planned, generated, merged.text, status, counts, dropped))
    if refused:
        raise FlmigrateError(
            f"{refused[0]} exists but flmigrate never wrote it (a hand-made file); nothing was "
            "written. Keep it, or rerun with --force to replace it after a backup",
            "hand-made: " + ", ".join(refused),
        )
    if conflicts:
        raise FlmigrateError(
            f"hand edit of {conflicts[0][0]} conflicts with the new upstream; nothing "
            "was written. Resolve the merge under reports/ and copy it back, or rerun with --force",
            "conflicts: " + "; ".join(f"{target} ({detail})" for target, detail in conflicts),
        )
    written = {decision.planned.target: decision.written for decision in decisions}
    stale_targets = stale.stale_files(manifest, plan.unit.name, written, own_keys)
    pinned_label = str(pinned.version) if pinned is not None else None
    with manifest.transaction():  # all or nothing, each file recorded as it is written
        results = [
            _apply(decision, manifest, report_dir, plan.unit.name, upstream_label, pinned_label)
            for decision in decisions
        ]
        results += [_drop(target, manifest, plan, pinned) for target in stale_targets]
        _ensure_packages(manifest, [decision.planned.target for decision in decisions])
        _remove_empty_compat_packages(manifest, stale_targets)
    return results


def _remove_empty_compat_packages(manifest: Manifest, dropped: list[str]) -> None:
    """The empty ``__init__.py`` markers step 4 made for compat folders a drop left without modules."""
    compat = Path(PLUGIN_PACKAGE) / "compat"
    for target in dropped:
        folder = Path(target).parent
        while folder.is_relative_to(compat):
            path = manifest.plugin_dir / folder
            others = (
                [p for p in path.iterdir() if p.name not in ("__init__.py", "__pycache__")] if path.is_dir() else []
            )
            init = path / "__init__.py"
            if others or (init.exists() and init.read_text(encoding="utf-8").strip()):
                break
            manifest.remove(folder / "__init__.py")
            shutil.rmtree(path / "__pycache__", ignore_errors=True)
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
            folder = folder.parent


def _dropped_patches(
    before: dict[str, int], now: dict[str, int], plan: MigrationPlan, planned: PlannedFile, pinned: Pinned | None
) -> tuple[tuple[str, str], ...]:
    """(id, why) of the catalog patches the file's last migration applied and this one does not."""
    from pytest_flmigrate.patches import CATALOG

    catalog = {patch.id: patch for patch in CATALOG}
    found = []
    for patch_id in sorted(set(before) - set(now)):
        patch = catalog.get(patch_id)
        if pinned is None or patch is None:
            why = "nothing left for it to rewrite"
        elif not patch.applies_to(pinned.version):
            why = f"it applies to pins {patch.pinned}, not vLLM {pinned.version}"
        elif patch.relevant is not None and not patch.relevant(
            source_text(planned), patch_context(plan, planned, pinned)
        ):
            why = f"not needed for this file at vLLM {pinned.version} (transformers {pinned.transformers_version})"
        else:
            why = f"nothing left for it to rewrite at vLLM {pinned.version}"
        found.append((patch_id, why))
    return tuple(found)


def _drop(target: str, manifest: Manifest, plan: MigrationPlan, pinned: Pinned | None) -> FileResult:
    """Remove a stale file (its hand edits, if any, backed up first) and its adaptation patch."""
    entry = manifest.entries[target]
    base = manifest.base(target)
    path = manifest.plugin_dir / target
    edited = path.exists() and base is not None and path.read_text(encoding="utf-8") != base
    backup = manifest.backup(target) if edited else None
    reason = _why_stale(entry, base, plan, pinned)
    manifest.forget(target)
    manifest.remove(hand_edits.adaptation_path(target))
    return FileResult(target, entry.get("role", ""), "dropped", "", {}, backup=backup, reason=reason)


def _why_stale(entry: dict, base: str | None, plan: MigrationPlan, pinned: Pinned | None) -> str:
    """Why a file of an earlier migration is no longer needed, for the report."""
    module = entry.get("upstream_module") or ""
    role = entry.get("role")
    was = f" (written for pinned vLLM {entry['pinned']})" if entry.get("pinned") else ""
    if role == "config" and plan.bridge is None and module not in plan.module_map:
        return f"no config bridge any more: {plan.bridge_reason}{was}"
    shim = module.startswith(f"{PLUGIN_PACKAGE}.")  # a module of ours, not a copy of upstream's
    if pinned is not None and role == "compat" and base is not None and not shim:
        names = sorted(n for n, kind in module_info_from_source(base, module).defines.items() if kind != "annotation")
        served = [n for n in names if (found := pinned.resolver.resolve(module, n)) and not found.type_checking]
        relocated = sorted(
            f"{n} from {plan.relocations[(module, n)][0]}" for n in names if (module, n) in plan.relocations
        )
        if names and len(served) == len(names):
            return f"pinned vLLM {pinned.version} has {module} ({', '.join(names)}){was}"
        if relocated:
            return f"pinned vLLM {pinned.version} serves {', '.join(relocated)}{was}"
    elif pinned is not None and module and not shim and pinned.index.has_module(module):
        return f"pinned vLLM {pinned.version} has {module}{was}"
    return f"nothing the plugin keeps imports it any more{was}"


def _apply(
    decision: _Decision,
    manifest: Manifest,
    report_dir: Path,
    model: str,
    upstream_label: str,
    pinned: str | None = None,
) -> FileResult:
    planned = decision.planned
    patch_path = hand_edits.adaptation_path(planned.target)
    backup = adaptation_backup = None
    if decision.status == "forced":
        backup = manifest.backup(planned.target)
        if (manifest.plugin_dir / patch_path).exists():
            adaptation_backup = manifest.backup(patch_path)
    manifest.write(planned.target, decision.written)
    manifest.record(
        planned.target,
        decision.written,
        decision.generated,
        {
            # a compat module is shared by the models that use it: no single owner, so that
            # migrating models in any order records the same manifest
            "model": model if planned.role != "compat" else None,
            "role": planned.role,
            "upstream": upstream_label,
            "upstream_module": planned.upstream_module,
            "patches": decision.patches,
            **({"pinned": pinned} if pinned else {}),
        },
    )
    adaptation: str | None = None
    replayed: tuple[str, ...] = ()
    if decision.written != decision.generated:
        patch = hand_edits.adaptation_patch(planned.target, decision.generated, decision.written, upstream_label)
        manifest.write(patch_path, patch)
        adaptation = patch_path
        replayed = tuple(hand_edits.hunks(patch)) if decision.status == "merged" else ()
    else:
        manifest.remove(patch_path)
    _write_diff(report_dir / "diffs", planned, decision.written)
    return FileResult(
        planned.target,
        planned.role,
        decision.status,
        sha256(decision.written.encode()),
        decision.patches,
        backup,
        adaptation,
        replayed,
        adaptation_backup,
        dropped_patches=decision.dropped_patches,
    )


def _write_diff(diffs_dir: Path, planned: PlannedFile, text: str) -> None:
    upstream = upstream_text(planned).splitlines(keepends=True)
    diff = difflib.unified_diff(
        upstream,
        text.splitlines(keepends=True),
        fromfile=f"upstream/{planned.upstream_module.replace('.', '/')}.py",
        tofile=f"plugin/{planned.target}",
    )
    write_if_changed(diffs_dir / (planned.target.replace("/", "__") + ".diff"), "".join(diff))


def _ensure_packages(manifest: Manifest, targets: list[str]) -> None:
    """Every folder a migrated file lands in is a package (``vllm_fl/configs/`` may be new)."""
    for target in targets:
        folder = Path(target).parent
        while folder.name:
            init = folder / "__init__.py"
            if not (manifest.plugin_dir / init).exists():
                manifest.write(init, "")
            folder = folder.parent
