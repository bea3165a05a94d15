"""Small libcst helpers the catalog patches share: dotted names and comma-separated lists."""

from __future__ import annotations

import functools
from collections.abc import Container, Sequence
from typing import TypeVar

import libcst as cst

Item = TypeVar("Item", cst.ImportAlias, cst.Arg)


@functools.lru_cache(maxsize=16)
def parsed(source: str) -> cst.Module:
    """``source``'s tree, parsed once for every patch that reads the same text (libcst trees are
    immutable: a transform returns a new tree). Parsing is a large part of step 4's cost."""
    return cst.parse_module(source)


def dotted_name(node: cst.BaseExpression | None) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, None for anything else."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


def decorator_name(decorator: cst.Decorator) -> str | None:
    """A decorator's last name: ``strict`` for ``@strict``, ``@strict(...)`` and ``@x.strict``."""
    node = decorator.decorator
    node = node.func if isinstance(node, cst.Call) else node
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return node.value if isinstance(node, cst.Name) else None


def dotted(name: str) -> cst.Name | cst.Attribute:
    """The expression node for a dotted name such as ``vllm_fl.configs.qwen3_5``."""
    head, _, last = name.rpartition(".")
    if not head:
        return cst.Name(last)
    return cst.Attribute(value=dotted(head), attr=cst.Name(last))


def drop_items(items: Sequence[Item], drop: Container[int]) -> list[Item]:
    """``items`` (import aliases or call arguments) without the positions in ``drop``.

    When the last item goes, the new last item takes the old last item's comma, so a
    trailing comma and the line break before the closing parenthesis survive (or no
    comma is left where there was none). A comment after the new last item is kept.
    """
    kept = [item for index, item in enumerate(items) if index not in drop]
    if not kept or kept[-1] is items[-1]:
        return kept
    return kept[:-1] + [kept[-1].with_changes(comma=_last_comma(kept[-1].comma, items[-1].comma))]


def keyword_arg(name: str, code: str) -> cst.Arg:
    """``name=code`` spelled as upstream spells keyword arguments (no spaces around ``=``)."""
    return cst.Arg(
        keyword=cst.Name(name),
        value=cst.parse_expression(code),
        equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")),
    )


def append_args(args: list[cst.Arg], added: list[cst.Arg]) -> list[cst.Arg]:
    """``args`` followed by ``added``: separated as the call separates its arguments (one per
    line stays one per line), a trailing comma stays trailing."""
    if not added:
        return args
    plain = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    if not args:
        return [*(a.with_changes(comma=plain) for a in added[:-1]), added[-1]]
    separator = args[-2].comma if len(args) > 1 and isinstance(args[-2].comma, cst.Comma) else plain
    last = args[-1]
    trailing = last.comma if isinstance(last.comma, cst.Comma) else cst.MaybeSentinel.DEFAULT
    # the space before ``)`` belongs to the last argument: it moves to the new last one
    joined = [*args[:-1], last.with_changes(comma=separator, whitespace_after_arg=cst.SimpleWhitespace(""))]
    joined += [arg.with_changes(comma=separator) for arg in added[:-1]]
    joined.append(added[-1].with_changes(comma=trailing, whitespace_after_arg=last.whitespace_after_arg))
    return joined


def _last_comma(
    own: cst.Comma | cst.MaybeSentinel, closing: cst.Comma | cst.MaybeSentinel
) -> cst.Comma | cst.MaybeSentinel:
    if not isinstance(closing, cst.Comma):
        return closing
    own_after = own.whitespace_after if isinstance(own, cst.Comma) else None
    closing_after = closing.whitespace_after
    if isinstance(own_after, cst.ParenthesizedWhitespace) and isinstance(closing_after, cst.ParenthesizedWhitespace):
        return closing.with_changes(whitespace_after=closing_after.with_changes(first_line=own_after.first_line))
    return closing
