"""The compatibility patch catalog (P1, P2, ...): one module per patch, applied in id order."""

from __future__ import annotations

import importlib
import pkgutil
import re

from packaging.version import Version

from ..errors import FlmigrateError
from .base import Patch, patch_from_module

_PATCH_MODULE = re.compile(r"^p\d{2}_\w+$")

# Every module named pNN_<name> in this package is a catalog entry, in id order.
CATALOG: tuple[Patch, ...] = tuple(
    patch_from_module(importlib.import_module(f"{__name__}.{name}"))
    for name in sorted(module.name for module in pkgutil.iter_modules(__path__))
    if _PATCH_MODULE.match(name)
)


def select_patches(ids: str | None, pinned_version: Version) -> tuple[Patch, ...]:
    """The catalog patches to apply at ``pinned_version``, in catalog order.

    ``ids`` is None for every patch, or a comma-separated list such as ``"P1, p2"``
    (case-insensitive; an empty list selects nothing). Either way only patches that apply
    to the pin are returned. An unknown id raises :class:`FlmigrateError`.
    """
    by_id = {patch.id: patch for patch in CATALOG}
    if ids is None:
        wanted = set(by_id)
    else:
        wanted = {part.strip().upper() for part in ids.split(",") if part.strip()}
        unknown = sorted(wanted - set(by_id))
        if unknown:
            raise FlmigrateError(
                f"--patches: unknown patch id(s) {', '.join(unknown)}; "
                f"known ids: {', '.join(by_id)}"
            )
    return tuple(
        patch for patch in CATALOG if patch.id in wanted and patch.applies_to(pinned_version)
    )
