"""Relocations: the pin's same API under another module, decided by comparing two trees."""

from __future__ import annotations

import json

from pytest_flmigrate.autofix.relocate import Relocator, cache_path, fingerprint, same_code, signature_mismatch
from pytest_flmigrate.index.records import FunctionInfo, Param
from pytest_flmigrate.index.resolve import Resolver


def test_moved_class_is_relocated(relocator):
    found = relocator.for_import("vllm.model_executor.layers.attention", "Attention")
    assert found.pinned == ("vllm.attention.layer", "Attention")
    assert found.upstream == ("vllm.model_executor.layers.attention.attention", "Attention")
    assert "4 of 4 pinned members" in found.evidence


def test_homonym_with_other_constructor_is_rejected_with_the_reason(relocator):
    reasons = {r.module: r.reason for r in relocator.rejections("vllm.model_executor.layers.attention", "Attention")}
    assert "the pin requires 'args'" in reasons["vllm.model_executor.models.pixtral"]


def test_class_keeping_its_members_under_a_new_module(relocator):
    found = relocator.for_import("vllm.v1.attention.backend", "AttentionType")
    assert found.pinned == ("vllm.attention.backends.abstract", "AttentionType")


def test_class_whose_upstream_defines_an_operator_the_pins_lacks_is_not_relocated(relocator):
    """Code written for upstream's ``updates |= other`` fails on the pin's class without ``__or__``."""
    assert relocator.for_import("vllm.model_executor.layers.pool.updates", "UpdateParams") is None
    (reason,) = relocator.rejections("vllm.model_executor.layers.pool.updates", "UpdateParams")
    assert reason.reason == "upstream's class defines __or__, which the pin's lacks"


def test_function_whose_code_changed_is_not_relocated(relocator):
    assert relocator.for_import("vllm.v1.attention.backend", "is_quantized_kv_cache") is None
    (reason,) = relocator.rejections("vllm.v1.attention.backend", "is_quantized_kv_cache")
    assert "code differs" in reason.reason


def test_import_that_works_in_the_pin_needs_nothing(relocator):
    assert relocator.for_import("vllm.model_executor.models.utils", "maybe_prefix") is None


def test_name_the_pin_lacks_everywhere(relocator):
    assert relocator.for_import("vllm.model_executor.models.utils", "new_helper") is None
    assert relocator.rejections("vllm.model_executor.models.utils", "new_helper") == ()


def test_kind_must_agree(trees):
    upstream, pinned = trees
    pinned.modules["vllm.attention.layer"].defines["Sink"] = "function"
    pinned.modules["vllm.attention.layer"].functions["Sink"] = FunctionInfo("Sink", 1, 1, [])
    upstream.modules["vllm.v1.attention.backend"].defines["Sink"] = "class"
    try:
        relocator = Relocator(Resolver([upstream]), Resolver([pinned]))
        (reason,) = relocator.rejections("vllm.v1.attention.backend", "Sink")
        assert reason.reason == "a function in the pin, a class upstream"
    finally:
        del pinned.modules["vllm.attention.layer"].defines["Sink"]
        del pinned.modules["vllm.attention.layer"].functions["Sink"]
        del upstream.modules["vllm.v1.attention.backend"].defines["Sink"]


def params(*spec: str) -> FunctionInfo:
    """``f("a", "b=1", "*", "c")``-like parameter specs."""
    out, keyword_only = [], False
    for item in spec:
        if item == "*":
            keyword_only = True
            continue
        if item.startswith("**"):
            out.append(Param(item[2:], "var_keyword"))
            continue
        name, _, default = item.partition("=")
        kind = "keyword_only" if keyword_only else "positional_or_keyword"
        out.append(Param(name, kind, bool(default), default or None))
    return FunctionInfo("f", 1, 1, out)


def test_signature_rules():
    assert signature_mismatch(params("a", "b=1"), params("a", "b=1", "c=2"), bound=False) is None
    assert (
        signature_mismatch(params("a", "b=1", "d=3"), params("a", "b=1"), bound=False) is None
    )  # extra optional: a call check
    assert "the pin requires 'c'" in signature_mismatch(params("a"), params("a", "c"), bound=False)
    assert "makes it optional" in signature_mismatch(params("a", "c=1"), params("a", "c"), bound=False)
    assert "upstream requires 'z'" in signature_mismatch(params("a", "z"), params("a", "b=1"), bound=False)
    assert signature_mismatch(params("a", "z"), params("a", "**kw"), bound=False) is not None  # position differs
    assert "positional #1" in signature_mismatch(params("b", "a"), params("a", "b"), bound=False)
    assert signature_mismatch(params("self", "a"), params("self", "a"), bound=True) is None


def test_same_code_ignores_docstrings_comments_annotations_and_formatting():
    assert same_code(
        'def f(x: int) -> int:\n    """Doc."""\n    return x + 1  # c\n', "def f(x):\n    return (x + 1)\n"
    )
    assert not same_code("def f(x):\n    return x + 1\n", "def f(x):\n    return x + 2\n")


def test_decisions_are_cached_on_disk(trees, tmp_path):
    upstream, pinned = trees
    cache = tmp_path / "relocations.json"
    first = Relocator(Resolver([upstream]), Resolver([pinned]), cache)
    found = first.for_import("vllm.model_executor.layers.attention", "Attention")
    first.for_import("vllm.model_executor.models.utils", "new_helper")
    first.save()
    decisions = json.loads(cache.read_text())["decisions"]
    assert decisions["vllm.model_executor.layers.attention.attention:Attention"][:2] == [
        "vllm.attention.layer",
        "Attention",
    ]
    again = Relocator(Resolver([upstream]), Resolver([pinned]), cache)
    assert again._decisions["vllm.model_executor.layers.attention.attention:Attention"] == found


def test_cache_is_keyed_by_both_trees(trees):
    upstream, pinned = trees
    path = cache_path([upstream], [pinned])
    assert path.name.startswith("vllm-0.13.0-") and "-from-vllm-0.99.0-" in path.name
    assert fingerprint(upstream) != fingerprint(pinned)
