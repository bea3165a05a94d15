"""Which catalog patch fixes a finding: checks name the patch by its module's ``NAME``, looked up in
the catalog that applies to the pin, so a finding names a patch id only when that patch exists and
applies; otherwise the finding keeps its ``manual:`` suggestion.
"""

from __future__ import annotations

from pytest_flmigrate.patches import p15_relocate_imports, p16_backport_helpers, p17_call_arguments, p25_env_flags
from pytest_flmigrate.review.base import ReviewContext, manual

#: Patches that work from a table computed per name (relocations, backports, argument table), with
#: the kind ``ReviewContext.claims(kind, module, name)`` answers for: the finding names such a patch
#: only when the claim says the patch takes this very name. Without the hook they stay manual.
CLAIM_KINDS: dict[str, str] = {
    p15_relocate_imports.NAME: "relocate",
    p16_backport_helpers.NAME: "backport",
    p17_call_arguments.NAME: "call-arguments",
    p25_env_flags.NAME: "env-flag",
}


def fix_for(context: ReviewContext, patch_name: str, suggestion: str, module: str = "", name: str = "") -> str:
    """The id of the patch named ``patch_name`` when it applies to this pin, else ``manual: <suggestion>``.

    For the patches of :data:`CLAIM_KINDS`, ``module``/``name`` say what is to be fixed: the
    import's module and name (relocate, backport), or the callee's qualified name and the offending
    keywords joined by commas (call arguments).
    """
    patch_id = context.patch(patch_name)
    claim = CLAIM_KINDS.get(patch_name)
    if patch_id and claim and not (context.claims and context.claims(claim, module, name)):
        patch_id = None
    return patch_id or manual(suggestion)
