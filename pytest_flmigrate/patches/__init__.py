"""The compatibility patch catalog (P1, P2, ...): one module per patch, applied in id order; a
plugin's own patches (patches/local.py) come after it."""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import TYPE_CHECKING

from packaging.version import Version

from ..errors import FlmigrateError
from .base import Patch, patch_from_module

if TYPE_CHECKING:
    from pytest_flmigrate.index.resolve import Resolver

_PATCH_MODULE = re.compile(r"^p\d{2}_\w+$")

# Every module named pNN_<name> in this package is a catalog entry, in id order.
CATALOG: tuple[Patch, ...] = tuple(
    patch_from_module(importlib.import_module(f"{__name__}.{name}"))
    for name in sorted(module.name for module in pkgutil.iter_modules(__path__))
    if _PATCH_MODULE.match(name)
)


def parse_ids(ids: str, local: tuple[Patch, ...] = ()) -> set[str]:
    """The ids of a ``--patches`` value such as ``"P1, p2"`` (case-insensitive): the catalog's
    and those of the plugin's own patches ``local``.

    An empty list or an unknown id raises :class:`FlmigrateError`: a migration without P1
    would leave relative imports behind, and a typo would silently drop a patch.
    """
    wanted = {part.strip().upper() for part in ids.split(",") if part.strip()}
    known = [patch.id for patch in (*CATALOG, *local)]
    if not wanted:
        raise FlmigrateError(
            f"--patches {ids!r}: no patch id given; name catalog ids (--patches P1,P2) "
            "or leave the option out to apply every patch"
        )
    unknown = sorted(wanted - set(known))
    if unknown:
        raise FlmigrateError(f"--patches: unknown patch id(s) {', '.join(unknown)}; known ids: {', '.join(known)}")
    return wanted


def select_patches(
    ids: str | None, pinned_version: Version, pinned: Resolver | None = None, local: tuple[Patch, ...] = ()
) -> tuple[Patch, ...]:
    """The patches to apply at ``pinned_version``: the catalog's in catalog order, then the
    plugin's own ``local`` ones in theirs.

    ``ids`` is None for every patch, or a ``--patches`` value (see :func:`parse_ids`). Either
    way only patches that apply to the pin are returned: by their version range, and for those
    keyed by the trees (the API translations) by comparing them with ``pinned``, the pinned
    tree (without it, they are taken to apply).
    """
    every = (*CATALOG, *local)
    wanted = {patch.id for patch in every} if ids is None else parse_ids(ids, local)
    return tuple(
        patch
        for patch in every
        if patch.id in wanted and patch.applies_to(pinned_version) and patch.gap_at(pinned) is None
    )
