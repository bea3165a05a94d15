"""Step 4's automatic fixes beyond P1/P2: relocations (P15) and backports (P16), planned.

For every import of every file the migration writes that fails against the pinned trees (and
that no other mechanism handles: the migration's own modules, config bridges, catalog renames,
the API translations P18-P20 where they rewrite the file),
the plan records one of:

- a relocation: the pin defines the same API under another module (P15 rewrites the import);
- a backport: the name is copied from upstream into ``vllm_fl/compat/`` with what it needs (P16
  rewrites the import; the compat modules join the plan as files of role ``compat``);
- nothing: the import stays a finding, ``plan.unfixed[(module, name)]`` says why ("too big to
  backport ...; port it by hand", "a module the pin lacks", ...), for step 6 to report.

Relocate first, backport second. Only fixes whose patch is selected (``--patches``) are
planned. Compat modules are shared by every model of the plugin: a compat file the tool wrote
before keeps the definitions the rest of the plugin imports from it, so migrating one model
never removes what another model imports, what only that model needed before and no longer does
(a new pin has it) goes, and reruns change no byte.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pytest_flmigrate.autofix import drift, env_flags
from pytest_flmigrate.autofix.backport import Backporter, compat_module
from pytest_flmigrate.autofix.bridge import PLUGIN_CONFIGS, bridge_name
from pytest_flmigrate.autofix.compat_source import CompatSpec
from pytest_flmigrate.autofix.relocate import Relocator, cache_path
from pytest_flmigrate.index import registries
from pytest_flmigrate.index.file_imports import imports_of
from pytest_flmigrate.index.records import TreeIndex
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.manifest import Manifest
from pytest_flmigrate.patches import (
    p22_strict_configs,
    p25_env_flags,
    p31_transformers5_processors,
    p34_import_time_members,
)
from pytest_flmigrate.patches.base import Patch
from pytest_flmigrate.patches.syntax import parsed
from pytest_flmigrate.steps import stale
from pytest_flmigrate.steps.migrate import MigrationPlan, PlannedFile, source_text

RELOCATE = "relocate-imports"  # P15's NAME
BACKPORT = "backport-helpers"  # P16's NAME
CALL_ARGUMENTS = "call-arguments"  # P17's NAME
RENAMES = "transformers-renames"  # P14's NAME
FORWARDED = "forwarded-defaults"  # P23's NAME
MEMBER_DRIFT = "member-drift"  # P24's NAME
ENV_FLAGS = p25_env_flags.NAME
PROCESSORS = p31_transformers5_processors.NAME
CODE_ROLES = ("model", "sibling", "config")
SHIMS = Path(__file__).resolve().parent / "shims"


@dataclass
class Fixer:
    """The session-wide part of the fixes: both trees' resolvers and the memoized decisions."""

    upstream: Resolver
    pinned: Resolver
    relocator: Relocator
    backporter: Backporter

    @classmethod
    def for_trees(cls, upstream_indexes: list[TreeIndex], pinned: Resolver, pinned_indexes: list[TreeIndex]) -> Fixer:
        upstream = Resolver(upstream_indexes)
        relocator = Relocator(upstream, pinned, cache_path(upstream_indexes, pinned_indexes))
        return cls(upstream, pinned, relocator, Backporter(upstream, pinned, relocator))

    _variants: dict[tuple[bool, bool, bool, bool, bool], Backporter] = field(default_factory=dict)

    @functools.cached_property
    def env_flags(self) -> dict:
        """The ``vllm.envs`` flags upstream defines and the pin lacks, at upstream's default (P25)."""
        return env_flags.missing_flags(self.upstream, self.pinned)

    def backporter_for(self, patches: tuple[Patch, ...]) -> Backporter:
        """The backporter for ``patches``: one that leans on relocations only when P15 is
        selected, on P24's member translations only when P24 is, on P25's flags only when P25 is,
        on P14's transformers renames only when P14 is, on P31's processor translation only when
        P31 is."""
        names = {patch.name for patch in patches}
        key = (RELOCATE in names, MEMBER_DRIFT in names, ENV_FLAGS in names, RENAMES in names, PROCESSORS in names)
        if key == (True, False, False, False, False):
            return self.backporter
        if key not in self._variants:
            self._variants[key] = Backporter(
                self.upstream,
                self.pinned,
                self.relocator if key[0] else None,
                max_definitions=self.backporter.max_definitions,
                max_lines=self.backporter.max_lines,
                member_drift=key[1],
                env_flags=frozenset(self.env_flags) if key[2] else frozenset(),
                renames=key[3],
                processors=key[4],
            )
        return self._variants[key]


def for_pin(patches: tuple[Patch, ...], pinned: Resolver) -> tuple[Patch, ...]:
    """``patches`` without those whose shim the pinned tree would reject (an import it lacks, a
    call its signatures do not take): a translation applies where the pin lacks its API
    (``select_patches``) and its shim works there."""
    return tuple(patch for patch in patches if patch.shim is None or shim_rejected(patch.shim, pinned) is None)


def shim_rejected(shim: str, pinned: Resolver) -> str | None:
    """Why the shim ``shim`` (a module of ``shims/``) would fail at the pin (the first import or
    call the pinned tree rejects), or None; a shim step 4 generates instead is made for the pin."""
    path = SHIMS / f"{shim}.py"
    if not path.is_file():
        return None
    source = path.read_text(encoding="utf-8")
    rejected = drift.rejected_calls(source, f"vllm_fl.compat.{shim}", pinned)
    return f"its shim vllm_fl.compat.{shim} would fail at this pin: {rejected[0]}" if rejected else None


def handled_by(plan: MigrationPlan, patches: tuple[Patch, ...]):
    """(module, name) -> True when the migration's modules, bridges or a selected catalog patch
    other than P15/P16 already make the import work."""
    names = {patch.name for patch in patches}
    renames: dict = {}
    removed: frozenset[str] = frozenset()
    if "transformers-renames" in names:
        from pytest_flmigrate.patches.p14_transformers_renames import RENAMES

        renames = RENAMES
    if "mamba-state-copy" in names:
        from pytest_flmigrate.patches.p03_mamba_state_copy import MISSING_NAMES

        removed = MISSING_NAMES
    module_map = plan.module_map
    # a copy importing a translated API is patched like the migrated files: its import is the
    # translation's (a use it does not handle refuses the migration at step 4)
    translated = {(module, api.name) for patch in patches for api in patch.apis for module in api.modules}

    def handled(module: str, name: str) -> bool:
        if module in module_map:
            return True
        if name == "*":
            return False
        return (
            f"{module}.{name}" in module_map
            or (module, name) in plan.name_map
            or (module, name) in renames
            or name in removed
            or (module, name) in translated
        )

    return handled


def plan_fixes(plan: MigrationPlan, fixer: Fixer, patches: tuple[Patch, ...]) -> MigrationPlan:
    """``plan`` with transformers config bridges, relocations, backports (compat files included),
    the unfixed imports and the ``vllm.envs`` flags the pin lacks (P25)."""
    plan = with_config_bridges(plan, fixer, patches)
    selected = {patch.name for patch in patches}
    if ENV_FLAGS in selected:
        plan = replace(plan, env_flags=fixer.env_flags)
    relocate, backports_on = RELOCATE in selected, BACKPORT in selected
    if not relocate and not backports_on:
        return with_refusals(with_import_time_members(with_shims(plan, patches), fixer, patches), patches)
    handled = handled_by(plan, patches)
    backporter = fixer.backporter_for(patches)
    fixes = _Fixes()
    failing: dict[tuple[str, str], None] = {}
    for planned in plan.files:
        if planned.role not in CODE_ROLES:
            continue
        text = planned.source.read_text(encoding="utf-8")
        translated = translated_imports(text, planned, patches)
        for ref in imports_of(text, planned.upstream_module, planned.is_package):
            if ref.name is None or ref.name == "*":
                continue
            key = (ref.module, ref.name)
            if key in translated or key in failing:
                continue
            if fixer.pinned.covers(ref.module) and not handled(*key) and not _works(fixer.pinned, ref):
                failing[key] = None
        for key in added_imports(text, planned, patches):
            if key not in failing and not handled(*key) and fixer.pinned.resolve(*key) is None:
                failing[key] = None
    # relocate first, all of them: a backport whose copy brings upstream's class of a name the
    # migration uses the pin's class for is refused (the two would meet at run time)
    relocated: dict[tuple[str, str], tuple[str, str]] = {}
    for key in failing if relocate else ():
        found = fixer.relocator.for_import(*key)
        if found is not None:
            fixes.relocations[key] = found.pinned
            relocated[found.upstream] = found.pinned
    for key in failing:
        if key in fixes.relocations:
            continue
        definition = backporter.definition(*key)
        # a name upstream's module ``__getattr__`` computes comes with that ``__getattr__``
        copied = definition or backporter.lazy_provider(*key)
        if copied is None:
            fixes.unfixed[key] = _not_a_definition(fixer.upstream, *key)
            continue
        if not backports_on:
            fixes.unfixed[key] = "the pin lacks it; backports (P16) are not selected"
            continue
        if _backport(copied, key, fixer, backporter, handled, relocated, fixes, patches):
            fixes.redirects[key] = (compat_module(copied[0]), definition[1] if definition else key[1])
    if backports_on:
        _fix_drift(plan, fixer, backporter, handled, relocated, fixes, patches)
        _copy_config_hooks(plan, fixer, backporter, handled, relocated, fixes, patches)
    fixer.relocator.save()
    return with_refusals(
        with_import_time_members(with_shims(fixes.apply(plan, fixer), patches), fixer, patches), patches
    )


def with_import_time_members(plan: MigrationPlan, fixer: Fixer, patches: tuple[Patch, ...]) -> MigrationPlan:
    """``plan`` with P34's decisions (when selected): the class attributes its files read at import
    that the pin's class lacks, each translated to the pin's value (``import_time_members``, also
    under the module P15 relocates the class to) or refusing the migration with its line
    (``refused``). Classes the migration writes or backports are upstream's: their reads work."""
    patch = next((p for p in patches if p.name == p34_import_time_members.NAME), None)
    if patch is None:
        return plan
    members = dict(plan.import_time_members)
    refused = dict(plan.refused)

    def copied(module: str, name: str) -> bool:
        return (
            module in plan.module_map
            or f"{module}.{name}" in plan.module_map
            or (module, name) in plan.name_map
            or (module, name) in plan.backports
        )

    for planned in plan.files:
        if planned.role not in CODE_ROLES and planned.compat is None:
            continue
        text = source_text(planned)
        if "." not in text:
            continue
        found, why = p34_import_time_members.reads(text, _package(planned), fixer.upstream, fixer.pinned, copied)
        members.update(found)
        for (module, name, member), pinned in found.items():
            relocated = fixer.relocator.for_import(module, name)
            if relocated is not None:
                members[(relocated.pinned[0], relocated.pinned[1], member)] = pinned
        if why is not None and planned.target not in refused:
            refused[planned.target] = f"{_path(planned)}:{why.line}: {why.reason} ({patch.id} {patch.name})"
    return replace(plan, import_time_members=members, refused=refused)


def config_hooks_to_copy(plan: MigrationPlan, fixer: Fixer) -> dict[str, str]:
    """Architecture -> upstream's config hook class (``MODELS_CONFIG_MAP``) for the unit's
    architectures the pin's map has no entry for."""
    upstream = registries.index_config_hooks(fixer.upstream.indexes.get("vllm"))
    pinned = registries.index_config_hooks(fixer.pinned.indexes.get("vllm"))
    return {
        arch.name: upstream[arch.name]
        for arch in plan.unit.architectures
        if arch.name in upstream and arch.name not in pinned
    }


def _copy_config_hooks(plan, fixer: Fixer, backporter: Backporter, handled, relocated, fixes: _Fixes, patches) -> None:
    """Backport (P16) the config hooks of the unit's architectures the pin lacks, for step 5 to
    register; one that cannot be copied stays unfixed with the reason (step 6's config-hooks)."""
    for arch, hook in sorted(config_hooks_to_copy(plan, fixer).items()):
        key = (registries.CONFIG_HOOKS_MODULE, hook)
        if _backport(key, key, fixer, backporter, handled, relocated, fixes, patches):
            fixes.hooks[arch] = hook


def _backport(
    definition, key, fixer: Fixer, backporter: Backporter, handled, relocated, fixes: _Fixes, patches
) -> bool:
    """Take the closure of upstream's ``definition`` into ``fixes`` when it is sound at the pin;
    else record why under ``key`` in ``fixes.unfixed``. Whether it was taken."""
    closure = backporter.closure(definition, handled)
    failure = (
        closure.failure
        or _mixed_classes(closure, relocated, fixer.relocator)
        or _sound_at_pin(closure, fixer, backporter, handled, relocated, fixes, _argument_rules(patches))
    )
    if failure:
        fixes.unfixed[key] = failure
        return False
    fixes.take(closure)
    return True


TRANSFORMERS_CONFIG = re.compile(r"transformers\.models\.\w+\.configuration_\w+")
"""A config module of transformers: bridged whole, like the unit's own config, when the pin's
transformers lacks a class a migrated file imports from it."""


def with_config_bridges(plan: MigrationPlan, fixer: Fixer, patches: tuple[Patch, ...]) -> MigrationPlan:
    """``plan`` plus a config bridge for every transformers config module whose classes a
    migrated file (or a bridge, transitively) imports and the pinned transformers lacks:
    sub-configs (``Qwen3_5TextConfig``), configs of related models (``Qwen3_5MoeConfig``), the
    config of a package the pin lacks whole (``transformers.models.qwen3_asr``). Each is copied
    into ``vllm_fl/configs/`` and patched like the unit's bridge (P14, P22); P2 points the
    imports there. A bridge's ``AutoConfig`` sub-config whose default model_type the pinned
    transformers does not know, and a model_type it looks up in ``CONFIG_MAPPING`` itself, gets its
    class (``plan.sub_config_classes``, for P22): one the bridge defines, the pin's class of the
    name upstream maps the model_type to, or that class bridged too. Only with P2 selected (it rewrites the imports)."""
    if "redirect-imports" not in {patch.name for patch in patches}:
        return plan
    module_map, name_map = dict(plan.module_map), dict(plan.name_map)
    sub_config_classes = dict(plan.sub_config_classes)
    taken = set(module_map.values())
    added: list[PlannedFile] = []
    queue = [planned for planned in plan.files if planned.role in CODE_ROLES]

    def bridge(config_module: str) -> str | None:
        """The plugin module bridging ``config_module`` (planned now if it was not), or None."""
        if config_module in module_map:
            return module_map[config_module]
        plugin_module = f"{PLUGIN_CONFIGS}.{bridge_name(config_module, config_module.split('.')[2])}"
        index, info = fixer.upstream.index_for(config_module), fixer.upstream.module(config_module)
        if plugin_module in taken or index is None or info is None:
            return None
        taken.add(plugin_module)
        module_map[config_module] = plugin_module
        for name, kind in info.defines.items():
            if kind == "class" and fixer.pinned.resolve("transformers", name) is None:
                for reexporting in ("transformers", config_module.rpartition(".")[0]):
                    name_map.setdefault((reexporting, name), plugin_module)
        bridged = PlannedFile(config_module, index.root / info.path, plugin_module, False, "config")
        added.append(bridged)
        queue.append(bridged)
        return plugin_module

    while queue:
        planned = queue.pop(0)
        text = planned.source.read_text(encoding="utf-8")
        for ref in imports_of(text, planned.upstream_module, planned.is_package):
            if ref.name in (None, "*") or ref.module.split(".")[0] != "transformers":
                continue
            if ref.module in module_map or (ref.module, ref.name) in name_map or _works(fixer.pinned, ref):
                continue
            symbol = fixer.upstream.resolve(ref.module, ref.name)
            if symbol is None or symbol.kind != "class" or not TRANSFORMERS_CONFIG.fullmatch(symbol.module):
                continue
            plugin_module = bridge(symbol.module)
            if plugin_module is not None:
                name_map[(ref.module, ref.name)] = plugin_module
        if planned.role == "config" and ("SubConfigSpec" in text or "CONFIG_MAPPING[" in text):
            module = parsed(text)
            looked_up = p22_strict_configs.auto_model_types(module) | p22_strict_configs.mapped_model_types(module)
            for model_type in looked_up - plan.transformers_model_types:
                found = _sub_config_class(fixer, planned, text, model_type)
                if found is not None and (
                    found[0] == planned.upstream_module or _works_or_bridged(fixer, found, bridge)
                ):
                    sub_config_classes.setdefault(model_type, found)
    if not added and name_map == plan.name_map and sub_config_classes == plan.sub_config_classes:
        return plan
    return replace(
        plan,
        files=[*plan.files, *added],
        module_map=module_map,
        name_map=name_map,
        sub_config_classes=sub_config_classes,
    )


def _sub_config_class(fixer: Fixer, planned: PlannedFile, text: str, model_type: str) -> tuple[str, str] | None:
    """(defining module, class) of the config class of ``model_type``: one ``planned`` defines with
    that ``model_type``, else the class upstream's transformers maps it to, or None."""
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef) and any(
            isinstance(stmt, ast.Assign)
            and [getattr(t, "id", None) for t in stmt.targets] == ["model_type"]
            and isinstance(stmt.value, ast.Constant)
            and stmt.value.value == model_type
            for stmt in node.body
        ):
            return planned.upstream_module, node.name
    name = _upstream_config_mapping(fixer).get(model_type)
    index = fixer.upstream.index_for("transformers")
    if name is None or index is None:
        return None
    modules = sorted(
        module
        for module, kind, type_checking in index.definitions(name)
        if kind == "class" and not type_checking and TRANSFORMERS_CONFIG.fullmatch(module)
    )
    return (modules[0], name) if len(modules) == 1 else None


def _works_or_bridged(fixer: Fixer, found: tuple[str, str], bridge) -> bool:
    """Whether the pin has the class ``found`` where upstream defines it, else whether its module
    is bridged."""
    pinned = fixer.pinned.resolve(*found)
    return (pinned is not None and pinned.kind == "class") or bridge(found[0]) is not None


def _upstream_config_mapping(fixer: Fixer) -> dict[str, str]:
    """model_type -> config class name of upstream's transformers (empty without its index)."""
    index = fixer.upstream.index_for("transformers")
    return registries.transformers_config_mapping(index.root / "transformers") if index is not None else {}


def _rejected_by_pin(
    closure, backporter: Backporter, fixer: Fixer, redirected: dict[tuple[str, str], tuple[str, str]] | None = None
) -> str | None:
    """Why a backport's copies would fail at the pin: the first call they make into it that
    the pinned signature does not take (upstream code calling a pinned function that has since
    changed, e.g. a keyword the pin's version lacks), or None. ``redirected``: imports the copies
    take from ``vllm_fl/compat/`` instead (upstream's function backported for them)."""
    for module in sorted({module for module, _ in closure.definitions}):
        source = backporter.source(module)
        assert source is not None, f"{module}: the closure read it"
        names = frozenset(name for owner, name in closure.definitions if owner == module)
        shared = {name: (owner, name) for owner, name in closure.shared if owner == module}
        for local, units in source.binders.items():
            for unit in units:
                binding = unit.imports.get(local)
                if binding is not None and (binding.module, binding.name) in (redirected or {}):
                    shared[local] = (redirected or {})[(binding.module, binding.name or "")]
        rejected = drift.rejected_calls(source.tree, module, fixer.pinned, shared, names)
        if rejected:
            return f"its copy of {module} would fail at the pin: {rejected[0]}; port it by hand"
    return None


def _sound_at_pin(
    closure, fixer: Fixer, backporter: Backporter, handled, relocated, fixes: _Fixes, rules
) -> str | None:
    """Why a backport's copies would fail at the pin, after upstream's functions they call with
    upstream's signature (the pooler stack's ``async_tensor_h2d(idx, device)``: the pin's takes
    ``(data, dtype, target_device, pin_memory)``) are backported for them, or None."""
    for module in sorted({module for module, _ in closure.definitions}):
        source = backporter.source(module)
        assert source is not None, f"{module}: the closure read it"
        names = frozenset(name for owner, name in closure.definitions if owner == module)
        shared = {name: (owner, name) for owner, name in closure.shared if owner == module}
        for found in drift.drifts(source.tree, module, source.is_package, fixer.pinned, fixer.upstream, shared, names):
            if found.member or found.imported in fixes.redirects or found.owner in rules or handled(*found.imported):
                continue
            refused = _backport_drift(found, fixer, backporter, handled, relocated, fixes, rules)
            if refused is not None:
                return (
                    f"its copy of {module} would fail at the pin: line {found.line}: {found.label}, as upstream "
                    f"calls it; backporting upstream's {found.imported[1]} for it was refused: {refused}"
                )
    return _rejected_by_pin(closure, backporter, fixer, fixes.redirects)


def _fix_drift(plan, fixer: Fixer, backporter: Backporter, handled, relocated, fixes: _Fixes, patches) -> None:
    """Signature drift (:mod:`pytest_flmigrate.autofix.drift`): backport upstream's class (P16) when
    its copy is sound, else drop a forwarded None default (P23) when that is, else leave the
    call to step 6 with both reasons (``unfixed[(pinned class, member)]``). A class a selected
    translation rewrites away in the file (P21's ``WeightsMapper``) is the translation's."""
    forwarding = FORWARDED in {patch.name for patch in patches}
    argument_rules = _argument_rules(patches)
    for planned in plan.files:
        if planned.role not in CODE_ROLES:
            continue
        text = planned.source.read_text(encoding="utf-8")
        translated = translated_imports(text, planned, patches)
        for found in drift.drifts(text, planned.upstream_module, planned.is_package, fixer.pinned, fixer.upstream):
            if handled(*found.imported) or found.imported in fixes.redirects or found.imported in translated:
                continue
            if not found.member and found.owner in argument_rules:
                continue  # P17's table spells the call the pin's way: upstream's function is not wanted
            refused = _backport_drift(found, fixer, backporter, handled, relocated, fixes, argument_rules)
            if refused is None:
                continue
            dropped = _forwarded_default(found, text) if forwarding else "forwarded defaults (P23) are not selected"
            if dropped is None:
                cls, method = found.enclosing  # type: ignore[misc]
                drops = {(cls, method, keyword) for keyword in found.keywords}
                module = planned.upstream_module
                fixes.forwarded[module] = fixes.forwarded.get(module, frozenset()) | drops
                continue
            fixes.unfixed[found.key] = (
                f"backporting upstream's {found.imported[1]} was refused: {refused}; dropping "
                f"{', '.join(found.keywords)} does not keep behaviour: {dropped}"
            )


def _argument_rules(patches: tuple[Patch, ...]) -> frozenset[str]:
    """``module.function`` of the pinned callees P17's table rewrites calls of (when selected)."""
    if CALL_ARGUMENTS not in {patch.name for patch in patches}:
        return frozenset()
    from pytest_flmigrate.patches.p17_call_arguments import RULES

    return frozenset(rule.pinned.replace(":", ".") for rule in RULES)


def _backport_drift(
    found: drift.Drift, fixer: Fixer, backporter: Backporter, handled, relocated, fixes, rules=frozenset()
) -> str | None:
    """Backport upstream's class or function of a drifting call; None when done, else why not
    (``rules``: the functions P17 spells the pin's way, left to it in the copies)."""
    definition = backporter.definition(*found.imported)
    if definition is None:
        return _not_a_definition(fixer.upstream, *found.imported)
    closure = backporter.closure(definition, handled)
    failure = closure.failure or _mixed_classes(closure, relocated, fixer.relocator)
    if failure:
        return failure
    symbol = fixer.upstream.resolve(*definition)
    assert symbol is not None, f"{definition}: a definition comes from the upstream index"
    if found.member:  # a class's member: the copy must hold upstream's (a function is the copy itself)
        if found.member == "__init__":
            member, _ = fixer.upstream.constructor(symbol.module, symbol.name)
        else:
            member = fixer.upstream.find_member(symbol.module, symbol.name, found.member)
        if member is None or (member.owner_module, member.owner) not in closure.definitions:
            where = f"{member.owner_module}.{member.owner}" if member is not None else "nowhere upstream"
            return f"upstream's {found.member} is defined in {where}, which the copy takes from the pin"
    for module in sorted({module for module, _ in closure.definitions}):
        source = backporter.source(module)
        assert source is not None, f"{module}: the closure read it"
        names = frozenset(name for owner, name in closure.definitions if owner == module)
        shared = {name: (owner, name) for owner, name in closure.shared if owner == module}
        found_inner = drift.drifts(source.tree, module, source.is_package, fixer.pinned, fixer.upstream, shared, names)
        inner = [d for d in found_inner if d.member]  # a function it calls so is backported for it below
        if inner:
            return f"its copy would call {inner[0].label}, which the pin's lacks too"
    fixes.redirects[found.imported] = (compat_module(definition[0]), definition[1])  # its own copies may call it
    rejected = _sound_at_pin(closure, fixer, backporter, handled, relocated, fixes, rules)
    if rejected:
        del fixes.redirects[found.imported]
        return rejected
    fixes.take(closure)
    return None


def _forwarded_default(found: drift.Drift, text: str) -> str | None:
    """None when P23 may drop the keywords of ``found`` (see its docstring), else why not."""
    if found.enclosing is None or found.enclosing[1] != found.member:
        return "the call is not an override forwarding to its base's own method"
    if found.named:
        return "upstream's base names the keyword: it uses it itself"
    if not found.forwarded:
        return "the value is not the override's own parameter defaulting to None"
    for keyword in found.keywords:
        if not drift.receivers_default_to_none(text, keyword):
            return f"the file passes {keyword} a value other than a forwarded None, or a function of it defaults it otherwise"
    return None


def with_shims(plan: MigrationPlan, patches: tuple[Patch, ...]) -> MigrationPlan:
    """``plan`` plus the shim modules (``pytest_flmigrate/autofix/shims/``, written as
    ``vllm_fl/compat/<stem>.py``) that a selected patch's rewritten imports point at."""
    needed: set[str] = set()
    for planned in plan.files:
        if planned.role not in CODE_ROLES and planned.compat is None:
            continue
        text = source_text(planned)
        for patch in patches:
            if patch.shim and patch.rewritten_imports and patch.rewritten_imports(text, _package(planned)):
                needed.add(patch.shim)
    present = {planned.plugin_module for planned in plan.files}
    shims = [
        PlannedFile(module, SHIMS / f"{stem}.py", module, False, "compat")
        for stem in sorted(needed)
        if (module := f"vllm_fl.compat.{stem}") not in present
    ]
    if p25_env_flags.SHIM not in present and _reads_missing_flags(plan, patches):
        text = env_flags.shim_text(plan.env_flags)
        shims.append(
            PlannedFile(env_flags.ENVS, Path(env_flags.__file__), p25_env_flags.SHIM, False, "compat", text=text)
        )
    return replace(plan, files=[*plan.files, *shims]) if shims else plan


def _reads_missing_flags(plan: MigrationPlan, patches: tuple[Patch, ...]) -> bool:
    """A file of the plan reads a ``vllm.envs`` flag the pin lacks, and P25 is selected to point it
    at the generated shim (``vllm_fl/compat/envs.py``)."""
    if not plan.env_flags or ENV_FLAGS not in {patch.name for patch in patches}:
        return False
    for planned in plan.files:
        if planned.role in CODE_ROLES or planned.compat is not None:
            text = source_text(planned)
            if "envs" in text and p25_env_flags.reads_missing(parsed(text), plan.env_flags.keys()):
                return True
    return False


def with_refusals(plan: MigrationPlan, patches: tuple[Patch, ...]) -> MigrationPlan:
    """``plan`` with ``refused``: every file whose use of a selected translation's API the
    translation leaves alone (``path:line: why``), for step 4 to refuse before writing."""
    refused: dict[str, str] = dict(plan.refused)
    for planned in plan.files:
        if (planned.role not in CODE_ROLES and planned.compat is None) or planned.target in refused:
            continue
        text = source_text(planned)
        for patch in patches:
            found = patch.refusal(text, _package(planned)) if patch.refusal is not None else None
            if found is not None:
                refused[planned.target] = f"{_path(planned)}:{found.line}: {found.reason} ({patch.id} {patch.name})"
                break
    return replace(plan, refused=refused) if refused != plan.refused else plan


def _path(planned: PlannedFile) -> str:
    """The upstream file of ``planned``, relative to the tree (``vllm/model_executor/models/x.py``)."""
    return planned.upstream_module.replace(".", "/") + ("/__init__.py" if planned.is_package else ".py")


def _package(planned: PlannedFile) -> str:
    return planned.upstream_module if planned.is_package else planned.upstream_module.rpartition(".")[0]


def translated_imports(text: str, planned: PlannedFile, patches: tuple[Patch, ...]) -> set[tuple[str, str]]:
    """The imports of ``planned`` that a selected API translation (P18-P20) rewrites away."""
    found: set[tuple[str, str]] = set()
    for patch in patches:
        if patch.rewritten_imports is not None:
            found |= patch.rewritten_imports(text, _package(planned))
    return found


def added_imports(text: str, planned: PlannedFile, patches: tuple[Patch, ...]) -> set[tuple[str, str]]:
    """The imports a selected translation adds to ``planned`` (P27's results)."""
    found: set[tuple[str, str]] = set()
    for patch in patches:
        if patch.added_imports is not None:
            found |= patch.added_imports(text, _package(planned))
    return found


def _mixed_classes(closure, relocated: dict[tuple[str, str], tuple[str, str]], relocator: Relocator) -> str | None:
    """Why a backport would mix two classes of one name, or None: its copy brings upstream's
    definition of a name that the migration (or the copy itself) imports from the pin
    (relocated), so the pin's objects would reach code written for upstream's class."""
    own = dict(relocated)
    for key in closure.relocations:
        found = relocator.for_import(*key)
        if found is not None:
            own[found.upstream] = found.pinned
    for module, name in sorted(closure.definitions & own.keys()):
        pinned = own[(module, name)]
        return (
            f"its copy brings upstream's {module}.{name}, while the migration uses the pin's "
            f"{pinned[0]}.{pinned[1]} (relocated): objects of one would reach code written for the "
            "other; port it by hand"
        )
    return None


def with_written_compat(
    plan: MigrationPlan,
    fixer: Fixer,
    patches: tuple[Patch, ...],
    manifest: Manifest,
    own_keys: Iterable[str] = (),
) -> MigrationPlan:
    """``plan`` whose compat files also keep what the rest of the plugin imports from them.

    Compat modules are shared by every migrated model: call this with the plugin locked, right
    before writing, so that one model's migration never drops what another model (or a hand-made
    file, or a hand edit) imports; what only this model needed before and no longer does (a pin
    bump) goes (stale.py). ``own_keys``: the model's architectures and model_type, which mark its
    own blocks of register_model(). A definition that can no longer be copied (upstream changed)
    is dropped and listed in ``unfixed``.
    """
    if BACKPORT not in {patch.name for patch in patches}:
        return plan
    backporter = fixer.backporter_for(patches)
    handled = handled_by(plan, patches)
    fixes = _Fixes.of(plan)
    upstream_of = {
        stale.module_of(target)[0]: entry.get("upstream_module")
        for target, entry in manifest.entries.items()
        if entry.get("role") == "compat"
    }
    added = False
    rewritten = [planned.target for planned in plan.files if planned.role == "compat"]
    used = stale.used_compat_names(manifest, plan.unit.name, own_keys, rewritten)
    for plugin_module, names in sorted(used.items()):
        module = upstream_of.get(plugin_module)
        if module not in fixes.compat:
            continue  # a compat module this migration does not write stays as it is
        source = backporter.source(module)
        for name in sorted(names - fixes.compat.get(module, set())):
            if source is None or not source.binders.get(name):
                continue
            closure = backporter.closure((module, name), handled)
            if closure.failure:
                fixes.unfixed[(module, name)] = (
                    f"kept in {compat_module(module)} for an earlier migration, but: {closure.failure}"
                )
                continue
            fixes.take(closure)
            added = True
    return fixes.apply(plan, fixer) if added else plan


class _Fixes:
    """What the fixes of one plan add up to."""

    def __init__(self) -> None:
        self.relocations: dict = {}
        self.redirects: dict = {}
        self.unfixed: dict = {}
        self.compat: dict[str, set[str]] = {}
        self.from_pin: dict[str, set[str]] = {}
        self.live: dict[str, set[str]] = {}
        self.forwarded: dict[str, frozenset[tuple[str, str, str]]] = {}
        self.hooks: dict[str, str] = {}  # architecture -> the config hook class copied for it

    @classmethod
    def of(cls, plan: MigrationPlan) -> _Fixes:
        fixes = cls()
        fixes.relocations.update(plan.relocations)
        fixes.redirects.update(plan.backports)
        fixes.unfixed.update(plan.unfixed)
        fixes.forwarded.update(plan.forwarded_defaults)
        fixes.hooks.update(plan.config_hooks)
        for planned in plan.files:
            if planned.compat is not None:
                fixes.compat[planned.upstream_module] = set(planned.compat.keep)
                fixes.from_pin[planned.upstream_module] = set(planned.compat.from_pin)
                fixes.live[planned.upstream_module] = set(planned.compat.live)
        return fixes

    def take(self, closure) -> None:
        for module, name in closure.definitions:
            self.compat.setdefault(module, set()).add(name)
        for module, name in closure.shared:
            self.from_pin.setdefault(module, set()).add(name)
        for module, name in closure.live:
            self.live.setdefault(module, set()).add(name)
        self.relocations.update(closure.relocations)
        for key, (module, name) in closure.redirects.items():
            self.redirects[key] = (compat_module(module), name)

    def apply(self, plan: MigrationPlan, fixer: Fixer) -> MigrationPlan:
        files = [f for f in plan.files if f.role != "compat" or f.compat is None]  # shims stay
        for module in sorted(self.compat):
            info = fixer.upstream.module(module)
            index = fixer.upstream.index_for(module)
            assert info is not None and index is not None, f"{module}: a compat module comes from the upstream index"
            spec = CompatSpec(
                tuple(sorted(self.compat[module])),
                tuple(sorted(self.from_pin.get(module, ()))),
                tuple(sorted(self.live.get(module, ()))),
            )
            files.append(
                PlannedFile(module, index.root / info.path, compat_module(module), info.is_package, "compat", spec)
            )
        return replace(
            plan,
            files=files,
            relocations=self.relocations,
            backports=self.redirects,
            unfixed=self.unfixed,
            forwarded_defaults=self.forwarded,
            config_hooks=dict(self.hooks),
        )


def _works(pinned: Resolver, ref) -> bool:
    found = pinned.resolve(ref.module, ref.name)
    return found is not None and not (found.type_checking and not ref.type_checking)


def _not_a_definition(upstream: Resolver, module: str, name: str) -> str:
    found = upstream.resolve(module, name)
    if found is None:
        return f"upstream does not define {module}.{name} either"
    if found.kind == "module":
        return f"{found.module} is a module the pin lacks; migrate or port it by hand"
    return f"upstream binds it as a {found.kind} ({found.module}), which cannot be copied; port it by hand"


def claims(plan: MigrationPlan, fixer: Fixer, patches: tuple[Patch, ...]):
    """Step 6's ``ReviewContext.claims``: whether P15/P16/P17/P25 (when in ``patches``) fix a name.

    ``(kind, module, name)``: ``relocate`` / ``backport`` with an import's module and name;
    ``env-flag`` with ``vllm.envs`` and a flag;
    ``call-arguments`` with the pinned callee's qualified name and the keywords the pin does not
    accept (comma-joined, empty for a missing argument). Claims are made only for what the
    patch certainly rewrites: a rule that depends on the argument's value is not claimed.
    """
    full = plan_fixes(plan, fixer, patches)
    names = {patch.name for patch in patches}
    from pytest_flmigrate.patches.p17_call_arguments import RULES

    rules = {rule.pinned.replace(":", "."): rule for rule in RULES} if "call-arguments" in names else {}

    def claim(kind: str, module: str, name: str) -> bool:
        if kind == "relocate":
            return (module, name) in full.relocations
        if kind == "backport":
            return (module, name) in full.backports
        if kind == "env-flag":
            return module == env_flags.ENVS and name in full.env_flags
        if kind == "call-arguments":
            rule = rules.get(module)
            if rule is None:
                return False
            offending = {k for k in name.split(",") if k}
            if offending:
                return offending <= set(rule.rename)
            return bool(rule.fill)
        return False

    return claim
