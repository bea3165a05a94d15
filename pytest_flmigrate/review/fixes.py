"""Which catalog patch fixes a kind of finding, by patch NAME (looked up in the catalog that
applies to the pin, so a finding names a patch id only when that patch exists and applies).

Step 4's automatic fixes register here: give a patch module ``NAME = "<name below>"`` or
change the name in ``PATCH_NAMES``. A kind whose patch is absent yields the finding's
``manual:`` suggestion instead.
"""

from __future__ import annotations

from pytest_flmigrate.review.base import ReviewContext, manual

PATCH_NAMES: dict[str, str] = {
    "relative-import": "relative-imports",  # P1
    "plugin-redirect": "redirect-imports",  # P2: a module/name this migration writes into vllm_fl
    "mamba-state-copy": "mamba-state-copy",  # P3
    "mark-model-context": "mark-model-context",  # P4
    "gdn-state-dtype": "gated-delta-net-state-dtype",  # P9
    "mamba-cache-mode": "mamba-cache-mode",  # P10
    "transformers-rename": "transformers-renames",  # P14
    # automatic fixes of step 4 (issue 3, second half)
    "relocate": "relocate-imports",  # the pin defines the name under another module
    "backport": "backport-helpers",  # the name exists nowhere in the pin: copy it into vllm_fl/compat
    "call-arguments": "call-arguments",  # an argument table entry drops/renames the argument
    "stacked-weights": "stacked-weights",  # P21: WeightsMapper(orig_to_new_stacked=...) and its loader, ported
}


# Kinds whose patch works from a table computed per name (relocations, backports, argument
# table): the finding names that patch only when ``ReviewContext.claims(kind, module, name)``
# says the patch takes this very name. Without the hook they stay manual: never overclaim.
CLAIMED_KINDS = frozenset({"relocate", "backport", "call-arguments"})


def fix_for(context: ReviewContext, kind: str, suggestion: str, module: str = "", name: str = "") -> str:
    """The patch id that rewrites ``kind`` at this pin, else ``manual: <suggestion>``.

    For :data:`CLAIMED_KINDS`, ``module``/``name`` say what is to be fixed: the import's module
    and name (relocate, backport), or the callee's qualified name and the offending keywords
    joined by commas (call-arguments).
    """
    patch_name = PATCH_NAMES.get(kind)
    patch_id = context.patch(patch_name) if patch_name else None
    if patch_id and kind in CLAIMED_KINDS and not (context.claims and context.claims(kind, module, name)):
        patch_id = None
    return patch_id or manual(suggestion)
