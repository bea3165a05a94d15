"""The compatibility patch catalog (P1, P2, ...): one module per patch, applied in id order."""

from __future__ import annotations

from packaging.version import Version

from ..errors import FlmigrateError
from . import (
    p01_relative_imports,
    p02_redirect_imports,
    p03_mamba_state_copy,
    p04_mark_model_context,
    p09_gated_delta_net_state_dtype,
    p10_mamba_cache_mode,
    p14_transformers_renames,
    p15_relocate_imports,
    p16_backport_helpers,
    p17_call_arguments,
)
from .base import Patch, patch_from_module

CATALOG: tuple[Patch, ...] = tuple(
    patch_from_module(module)
    for module in (
        p01_relative_imports,
        p02_redirect_imports,
        p03_mamba_state_copy,
        p04_mark_model_context,
        p09_gated_delta_net_state_dtype,
        p10_mamba_cache_mode,
        p14_transformers_renames,
        p15_relocate_imports,
        p16_backport_helpers,
        p17_call_arguments,
    )
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
