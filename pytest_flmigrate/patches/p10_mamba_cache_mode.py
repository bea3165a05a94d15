"""P10: comparisons of ``cache_config.mamba_cache_mode`` become tests of ``enable_prefix_caching``.

What: only the comparisons that ask "is mamba prefix caching on?" are rewritten; ``x`` is any
expression (``vllm_config.cache_config``, ``self.cache_config``, ...) and is kept as written::

    x.mamba_cache_mode != "none"   ->  x.enable_prefix_caching
    x.mamba_cache_mode == "align"  ->  x.enable_prefix_caching
    x.mamba_cache_mode == "none"   ->  not x.enable_prefix_caching
    x.mamba_cache_mode != "align"  ->  not x.enable_prefix_caching

The literal may stand on either side. Everything else is left alone: other modes (``"all"``,
the catalog's ``"full"``), chained comparisons, ``in``/``is``, assignments to the attribute and
plain reads (e.g. passing the mode on as an argument).

Why: ``mamba_cache_mode`` does not exist in 0.13.0. In the upstream versions migrated from
(0.32, 0.33) it is ``Literal["align", "none"]``, set by the config check from
``enable_prefix_caching``: ``"align"`` when prefix caching is on, ``"none"`` when it is off.
In 0.13.0 that same check turns ``enable_prefix_caching`` off for models whose mamba layers
cannot cache, so the four shapes above are exact. ``"all"``/``"full"`` are not modes of those
versions (such a test is always false upstream) and have no exact 0.13.0 equivalent. Note that
0.13.0 caches mamba state at every block rather than ``"align"``'s scheduler-step points: code
guarded by these tests still deserves review.

When: hybrid models (mamba / linear attention layers) and their attention backends that branch
on the mamba cache mode.
"""

from __future__ import annotations

import libcst as cst

from .base import PatchContext, PatchTransformer

ID = "P10"
NAME = "mamba-cache-mode"
PINNED = "<0.15"  # the pins lacking the API: 0.13.0 does, 0.15.0 and later have it

PREFIX_CACHING_WHEN: dict[tuple[type[cst.BaseCompOp], str], bool] = {
    (cst.NotEqual, "none"): True,
    (cst.Equal, "align"): True,
    (cst.Equal, "none"): False,
    (cst.NotEqual, "align"): False,
}
"""(operator, mode) -> the comparison's value when prefix caching is enabled."""


def relevant(source: str, context: PatchContext) -> bool:
    """Only files spelling ``mamba_cache_mode`` can need this patch."""
    return "mamba_cache_mode" in source


class Transformer(PatchTransformer):
    def leave_Comparison(self, original_node: cst.Comparison, updated_node: cst.Comparison) -> cst.BaseExpression:
        if len(updated_node.comparisons) != 1:
            return updated_node
        target = updated_node.comparisons[0]
        left, right = updated_node.left, target.comparator
        attribute, literal = (left, right) if isinstance(right, cst.SimpleString) else (right, left)
        if not (
            isinstance(attribute, cst.Attribute)
            and attribute.attr.value == "mamba_cache_mode"
            and isinstance(literal, cst.SimpleString)
            and not attribute.lpar
        ):
            return updated_node
        value = literal.evaluated_value
        enabled = PREFIX_CACHING_WHEN.get((type(target.operator), value)) if isinstance(value, str) else None
        if enabled is None:
            return updated_node
        self.count += 1
        test: cst.BaseExpression = attribute.with_changes(attr=cst.Name("enable_prefix_caching"))
        if not enabled:
            test = cst.UnaryOperation(operator=cst.Not(), expression=test)
        return test.with_changes(lpar=updated_node.lpar, rpar=updated_node.rpar)
