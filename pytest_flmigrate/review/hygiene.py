"""Code cleanliness: hard-coded machine paths and bare ``except:``."""

from __future__ import annotations

import ast

from pytest_flmigrate.review.base import FileView, Finding, ReviewContext, check, manual

HARDCODED = ("/models/", "/usr/local/lib")


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of string constants that are statements (docstrings, string comments)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }


@check("hardcoded-paths")
def hardcoded_paths(context: ReviewContext, view: FileView) -> list[Finding]:
    """string literals holding machine paths (/models/, /usr/local/lib)"""
    skip = _docstrings(view.tree)
    findings = []
    for node in view.nodes(ast.Constant):
        if not isinstance(node.value, str) or id(node) in skip:
            continue
        for marker in HARDCODED:
            if marker in node.value:
                text = node.value if len(node.value) <= 60 else node.value[:57] + "..."
                findings.append(
                    view.finding(
                        "hardcoded-paths",
                        node,
                        repr(text),
                        f"hard-coded path containing {marker!r}",
                        manual("take the path from the config, an option or an env var"),
                    )
                )
                break
    return findings


@check("bare-except")
def bare_except(context: ReviewContext, view: FileView) -> list[Finding]:
    """bare ``except:`` (catches KeyboardInterrupt/SystemExit and hides import errors)"""
    return [
        view.finding(
            "bare-except",
            node,
            "except:",
            "bare except",
            manual("catch the exceptions meant (except Exception: at the widest)"),
        )
        for node in view.nodes(ast.ExceptHandler)
        if node.type is None
    ]
