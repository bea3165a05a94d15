"""The skeleton the API translations share: one file's decision from its uses of the API, the
runner layout's strings, what a shim accepts, and whether a pin has the gap."""

from textwrap import dedent

import libcst as cst
import pytest

from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import CATALOG
from pytest_flmigrate.patches import p18_gate_linear as p18
from pytest_flmigrate.patches import p19_fused_moe_factory as p19
from pytest_flmigrate.patches import p20_expert_params_mapping as p20
from pytest_flmigrate.patches import p26_clamped_swiglu as p26
from pytest_flmigrate.patches.translation import (
    Api,
    Refused,
    ShimRedirect,
    Translated,
    Translation,
    Translations,
    Uses,
    api_gap,
    flat_layout,
    runner_layout_refusal,
    shim_function,
)
from tests.fixtures.trees import write

API = Api("Router", ("vllm.layers",))
TRANSLATION = Translation(
    API,
    Uses,
    lambda uses: (uses.others[0], "used other than called") if uses.others else None,
    lambda call, uses: "a star argument" if any(arg.star for arg in call.args) else None,
)


def decide(source: str) -> Refused | None:
    return TRANSLATION.refusal(dedent(source), "vllm.models")


def test_a_file_whose_every_call_is_accepted_is_translated():
    assert decide("from vllm.layers import Router as R\nr = R(1, bias=False)\n") is None


def test_a_file_not_importing_the_api_is_not_refused():
    assert decide("from elsewhere import Router\nRouter(*a)\n") is None


def test_the_file_check_comes_before_the_calls_and_names_the_line():
    found = decide("from vllm.layers import Router\nRouter(*a)\n\nx = Router\n")
    assert found == Refused(4, "Router: used other than called")
    assert str(found) == "line 4: Router: used other than called"


def test_the_first_refused_call_is_named_with_its_reason_and_line():
    found = decide("from ..layers import Router\nRouter(1)\nRouter(\n    *args)\n")
    assert found == Refused(3, "Router( *args): a star argument")


def test_rewritten_imports_are_those_of_a_translated_file_only():
    source = "from vllm.layers import Router\nRouter(1)\n"
    assert TRANSLATION.rewritten_imports(source, "vllm.models") == {("vllm.layers", "Router")}
    assert TRANSLATION.rewritten_imports(source + "Router(*a)\n", "vllm.models") == set()
    assert TRANSLATION.relevant(source, None) and not TRANSLATION.relevant("import os\n", None)


def test_a_patch_that_gathers_more_gets_its_own_uses_in_both_checks():
    class Counted(Uses):
        def visit_Integer(self, node: cst.Integer) -> None:
            self.strings.append((node.value, node))

    seen = []
    counted = Translation(
        API,
        Counted,
        lambda uses: seen.append(type(uses)),
        lambda call, uses: seen.append([value for value, _ in uses.strings]),
    )
    assert counted.refusal("from vllm.layers import Router\nRouter(7)\n", "vllm") is None
    assert seen == [Counted, ["7"]]


def test_several_translations_decide_as_one():
    other = Translation(Api("Gate", ("vllm.layers",)), Uses, lambda uses: None, lambda call, uses: "no")
    both = Translations((TRANSLATION, other))
    source = "from vllm.layers import Gate, Router\nRouter(1)\n"
    assert both.rewritten_imports(source, "vllm.models") == {("vllm.layers", "Router"), ("vllm.layers", "Gate")}
    refused = source + "Gate(2)\n"
    assert both.refusal(refused, "vllm.models") == Refused(3, "Gate(2): no")
    assert both.rewritten_imports(refused, "vllm.models") == set()


@pytest.mark.parametrize("patch", [p18, p19, p20, p26], ids=lambda patch: patch.ID)
def test_every_api_translation_decides_through_the_one_skeleton(patch):
    assert isinstance(patch.TRANSLATION, Translation | Translations)
    assert patch.refusal == patch.TRANSLATION.refusal and patch.relevant == patch.TRANSLATION.relevant
    assert patch.rewritten_imports == patch.TRANSLATION.rewritten_imports
    assert issubclass(patch.Transformer, Translated | ShimRedirect)
    entry = next(entry for entry in CATALOG if entry.id == patch.ID)
    assert entry.apis == patch.TRANSLATION.apis and entry.pin_gap is patch.pin_gap


def test_the_fused_experts_file_check_names_the_node_at_fault():
    module = cst.parse_module('x = f\ny = ".routed_experts"\n')
    uses = Uses.of(module, {"f"})
    assert runner_layout_refusal(uses) == (uses.others[0], "used other than called")
    uses = Uses.of(module, set())
    found = runner_layout_refusal(uses)
    assert found is not None and isinstance(found[0], cst.SimpleString)


@pytest.mark.parametrize(
    ("text", "flat"),
    [
        (".moe.experts.routed_experts.w13_weight", ".moe.experts.w13_weight"),
        ("experts.routed_experts.base_layer.", "experts.base_layer."),
        ("routed_experts_quant_method", "routed_experts_quant_method"),
    ],
)
def test_the_runner_layout_flattens_to_the_pins(text, flat):
    assert flat_layout(text) == flat


def test_strings_naming_the_runner_other_than_by_its_layout_are_found():
    source = 'a = ".experts.routed_experts.w2"\nb = "n_routed_experts"\nc = prefix + ".routed_experts"\n'
    module = cst.parse_module(source)
    found = runner_layout_refusal(Uses.of(module, set()))
    assert found is not None and isinstance(found[0], cst.SimpleString) and found[0].value == '".routed_experts"'


def test_a_shims_signature_and_accepted_values_are_read_from_its_source():
    shim = shim_function("moe_runner", "FusedMoEFactory")
    assert shim.positional[:2] == ("num_experts", "top_k")
    assert shim.accepted["scoring_func"] == ("softmax", "sigmoid")


GATE = "vllm/model_executor/layers/gate.py"


def pinned_tree(tmp_path, files: dict[str, str]) -> Resolver:
    write(tmp_path, {"vllm/__init__.py": "", "vllm/model_executor/__init__.py": "", **files})
    return Resolver([index_directory(tmp_path, "vllm")])


def test_a_translation_applies_where_the_pin_lacks_its_api(tmp_path):
    gap = api_gap((Api("GateLinear", ("vllm.model_executor.layers.gate",)),))
    lacking = pinned_tree(tmp_path / "old", {"vllm/model_executor/layers/__init__.py": "", GATE: "X = 1\n"})
    having = pinned_tree(
        tmp_path / "new", {"vllm/model_executor/layers/__init__.py": "", GATE: "class GateLinear:\n    pass\n"}
    )
    assert gap(lacking) is None
    assert gap(having) == "the pin has vllm.model_executor.layers.gate.GateLinear"
