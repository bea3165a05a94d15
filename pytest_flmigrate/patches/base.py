"""What a catalog patch is and how patches are applied to one source file.

A patch is data (id, pinned versions, docstring) plus a small libcst transformer. The
transformer sees a :class:`PatchContext` describing the file being migrated and counts the
rewrites it makes; ``apply_patches`` runs the selected patches in catalog order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import libcst as cst
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.layout import CATALOG_SOURCE

from .syntax import parsed

if TYPE_CHECKING:
    from pytest_flmigrate.index.resolve import Resolver

    from .translation import Api, Refused

#: The transformers release that renamed classes and made configs ``@strict`` dataclasses (P14, P22).
TRANSFORMERS_5 = Version("5")


@dataclass(frozen=True)
class PatchContext:
    """Facts about one file being migrated that patches may use.

    module:          the file's dotted module name upstream, e.g. ``vllm.model_executor.models.qwen3_5``
    is_package:      True when the file is a package ``__init__.py`` (relative imports resolve from it)
    module_map:      upstream module -> plugin module, for every module this migration writes
                     (the model unit, new sibling modules, config bridges)
    name_map:        (upstream module, name) -> plugin module, for names this migration provides
                     elsewhere, e.g. ``("transformers", "Qwen3_5Config") -> "vllm_fl.configs.qwen3_5"``
    pinned_version:  the pinned vLLM version
    pinned_transformers: the transformers the pin runs with (``Pinned.transformers_version``)
    relocations:     (upstream module, name) -> (pinned module, name): imports the pin serves from
                     another module, the same API (computed from both trees; catalog P15)
    backports:       (upstream module, name) -> (compat module, name): names the migration copies
                     into ``vllm_fl/compat/`` (catalog P16)
    forwarded_defaults: upstream module -> (class, method, keyword): ``keyword=keyword`` arguments
                     of ``super().method(...)`` in that class the pin's base does not take, whose
                     value is always None at the pin (catalog P23)
    transformers_model_types: the model_types the pinned transformers' ``CONFIG_MAPPING`` knows
                     (P22 builds a sub-config chosen by model_type only for those)
    sub_config_classes: model_type the pinned transformers lacks -> (module defining its config class,
                     class name): P22 builds an ``AutoConfig`` sub-config of that type with the class
                     (the module read through ``module_map``: a bridged class is imported from
                     ``vllm_fl/configs/``)
    import_time_members: (module a file imports a class from, class, member) -> the pin's
                     expression of the member's value, for class attributes read at import that the
                     pin's class lacks (decided on both trees by step 4; catalog P34)
    env_flags:       flag -> upstream's default, for the ``vllm.envs`` flags upstream defines and
                     the pin lacks (computed from both trees; catalog P25)
    """

    module: str
    pinned_version: Version
    pinned_transformers: Version
    is_package: bool = False
    module_map: Mapping[str, str] = field(default_factory=dict)
    name_map: Mapping[tuple[str, str], str] = field(default_factory=dict)
    relocations: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    backports: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    forwarded_defaults: Mapping[str, frozenset[tuple[str, str, str]]] = field(default_factory=dict)
    env_flags: Mapping[str, Any] = field(default_factory=dict)
    import_time_members: Mapping[tuple[str, str, str], str] = field(default_factory=dict)
    transformers_model_types: frozenset[str] = frozenset()
    sub_config_classes: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def package(self) -> str:
        """The package relative imports of this file are resolved against."""
        return self.module if self.is_package else self.module.rpartition(".")[0]


class PatchTransformer(cst.CSTTransformer):
    """Base of every patch's transformer: holds the context and counts rewrites."""

    def __init__(self, context: PatchContext) -> None:
        super().__init__()
        self.context = context
        self.count = 0


@dataclass(frozen=True)
class Patch:
    """One catalog entry. ``doc`` is the module docstring: what, why, when."""

    id: str
    name: str
    pinned: SpecifierSet
    transformer: type[PatchTransformer]
    doc: str
    relevant: Callable[[str, PatchContext], bool] | None = None
    """Optional quick test on the source given to :func:`apply_patches`: False only when the
    patch certainly rewrites nothing there (its visit is then skipped)."""
    rewritten_imports: Callable[[str, str], set[tuple[str, str]]] | None = None
    """Optional, for the API translations: (source, package) -> the ``(module, name)`` imports
    the patch rewrites away in that source, so that step 4 plans no other fix for them."""
    added_imports: Callable[[str, str], set[tuple[str, str]]] | None = None
    """Optional: (source, package) -> the upstream ``(module, name)`` imports the patch adds to
    that source (what a rewritten use needs); step 4 relocates or backports them (P15, P16) as
    if upstream imported them, and the patch imports them from there."""
    shim: str | None = None
    """Optional: a module of ``pytest_flmigrate/autofix/shims/`` (stem) the rewritten imports point at;
    step 4 writes it as ``vllm_fl/compat/<stem>.py`` whenever the patch rewrites a file."""
    refusal: Callable[[str, str], Refused | None] | None = None
    """Optional, for the API translations: (source, package) -> where and why the patch leaves the
    file's use of its API alone (step 4 refuses the migration), None when it translates it all."""
    apis: tuple[Api, ...] = ()
    """For the API translations: the upstream APIs they translate."""
    pin_gap: Callable[[Resolver], str | None] | None = None
    """Optional, for a patch keyed by the trees rather than by versions: given the pinned tree,
    None when the pin has the gap the patch fills, else why the patch does not apply there."""
    source: str = CATALOG_SOURCE
    """Where the patch comes from: the catalog, or its module's path in the plugin checkout
    (a plugin's own patch, patches/local.py)."""

    def applies_to(self, pinned_version: Version) -> bool:
        return self.pinned.contains(pinned_version, prereleases=True)

    def gap_at(self, pinned: Resolver | None) -> str | None:
        """Why the patch does not apply to the pinned tree (None: it does, or no tree is known)."""
        return self.pin_gap(pinned) if self.pin_gap is not None and pinned is not None else None

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.name


def patch_from_module(module: ModuleType, source: str = CATALOG_SOURCE) -> Patch:
    """Build the :class:`Patch` a patch module declares (ID, NAME, PINNED, Transformer)."""
    return Patch(
        id=module.ID,
        name=module.NAME,
        pinned=SpecifierSet(module.PINNED),
        transformer=module.Transformer,
        doc=module.__doc__ or "",
        relevant=getattr(module, "relevant", None),
        rewritten_imports=getattr(module, "rewritten_imports", None),
        added_imports=getattr(module, "added_imports", None),
        shim=getattr(module, "SHIM", None),
        refusal=getattr(module, "refusal", None),
        apis=tuple(getattr(module, "TRANSLATION").apis) if hasattr(module, "TRANSLATION") else (),
        pin_gap=getattr(module, "pin_gap", None),
        source=source,
    )


def apply_patches(source: str, patches: Iterable[Patch], context: PatchContext) -> tuple[str, dict[str, int]]:
    """Apply ``patches`` in order; return the new source and rewrites per patch id.

    Patches that do not apply to ``context.pinned_version`` are skipped. Formatting and
    comments that a patch does not touch survive byte for byte.
    """
    counts: dict[str, int] = {}
    final: cst.Module | None = None
    for patch, final, count in patch_stages(source, patches, context):
        if count:
            counts[patch.id] = count
    return (final if final is not None else parsed(source)).code, counts


def patch_stages(
    source: str, patches: Iterable[Patch], context: PatchContext
) -> Iterator[tuple[Patch, cst.Module, int]]:
    """Each of ``patches`` in order with the tree after it and its rewrites (0 for a patch that
    does not apply to the pin or is not relevant to the source)."""
    tree = parsed(source)
    for patch in patches:
        count = 0
        if patch.applies_to(context.pinned_version):
            tree, count = _run(patch, tree, source, context)
        yield patch, tree, count


def _run(patch: Patch, tree: cst.Module, source: str, context: PatchContext) -> tuple[cst.Module, int]:
    """``tree`` after ``patch`` (unchanged when the patch is not relevant to ``source``) and its
    rewrites. A plugin's own patch that raises fails in one line naming it and the file (a
    catalog patch's error is a bug of this tool: its traceback shows)."""

    def run() -> tuple[cst.Module, int]:
        if patch.relevant is not None and not patch.relevant(source, context):
            return tree, 0
        transformer = patch.transformer(context)
        return tree.visit(transformer), transformer.count

    if patch.source == CATALOG_SOURCE:
        return run()
    try:
        return run()
    except Exception as exc:  # the plugin's code: whatever it raises is named in one line
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise FlmigrateError(
            f"{patch.source}: the plugin's patch {patch.id} fails on {context.module}: {type(exc).__name__}: "
            f"{first}; fix the patch or remove it from the folder"
        ) from None
