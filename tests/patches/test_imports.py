"""The shared import-redirecting mechanism (used by P1, P2, P14) and its comma handling."""

import libcst as cst
import pytest

from pytest_flmigrate.patches.imports import module_location, redirect_from_import
from pytest_flmigrate.patches.syntax import drop_items

MAP = {
    "vllm.model_executor.models.kimi_k25_vit": "vllm_fl.models.kimi_k25_vit",
    "vllm.transformers_utils.configs.step3p5": "vllm_fl.configs.step3p5",
}


@pytest.mark.parametrize(
    ("module", "name", "location"),
    [
        ("vllm.model_executor.models", "kimi_k25_vit", ("vllm_fl.models", "kimi_k25_vit")),
        ("vllm.transformers_utils.configs.step3p5", "Step3p5Config", ("vllm_fl.configs.step3p5", "Step3p5Config")),
        ("vllm.model_executor.models.utils", "maybe_prefix", ("vllm.model_executor.models.utils", "maybe_prefix")),
        ("vllm.transformers_utils.configs.step3p5", "*", ("vllm_fl.configs.step3p5", "*")),
    ],
)
def test_module_location(module, name, location):
    assert module_location(MAP, module, name) == location


def _import(code: str) -> cst.ImportFrom:
    return cst.ensure_type(cst.parse_statement(code).body[0], cst.ImportFrom)


def test_unchanged_statement_is_reported_as_such():
    node = _import("from a import b, c as d\n")
    assert redirect_from_import(node, "a", lambda module, name: (module, name)) is None


def test_renamed_and_moved_names_keep_their_bindings():
    node = _import("from a import b, c as d, e\n")
    moves = {"b": ("x", "B"), "c": ("y", "c")}
    statements = redirect_from_import(node, "a", lambda m, n: moves.get(n, (m, n)))
    code = [cst.Module(body=[]).code_for_node(statement) for statement in statements]
    assert code == ["from a import e", "from x import B as b", "from y import c as d"]


def test_dropping_the_last_item_keeps_the_new_last_items_comment():
    call = cst.ensure_type(cst.parse_expression("f(\n    a,  # keep me\n    b,\n)"), cst.Call)
    args = drop_items(call.args, {1})
    assert cst.Module(body=[]).code_for_node(call.with_changes(args=args)) == ("f(\n    a,  # keep me\n)")
