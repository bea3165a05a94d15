"""The skeleton the API translations share: one file's decision from its uses of the API."""

from textwrap import dedent

import libcst as cst
import pytest

from pytest_flmigrate.patches import p18_gate_linear as p18
from pytest_flmigrate.patches import p19_fused_moe_factory as p19
from pytest_flmigrate.patches import p20_expert_params_mapping as p20
from pytest_flmigrate.patches.translation import Api, Translated, Translation, Uses

API = Api("Router", ("vllm.layers",))
TRANSLATION = Translation(
    API,
    Uses,
    lambda uses: "used other than called" if uses.others else None,
    lambda call, uses: "a star argument" if any(arg.star for arg in call.args) else None,
)


def decide(source: str) -> str | None:
    return TRANSLATION.refusal(cst.parse_module(dedent(source)), "vllm.models")


def test_a_file_whose_every_call_is_accepted_is_translated():
    assert decide("from vllm.layers import Router as R\nr = R(1, bias=False)\n") is None


def test_a_file_not_importing_the_api_is_left_alone_naming_where_it_comes_from():
    assert decide("from elsewhere import Router\nRouter()\n") == "not imported from vllm.layers"


def test_the_file_check_comes_before_the_calls():
    assert decide("from vllm.layers import Router\nRouter(*a)\nx = Router\n") == "used other than called"


def test_the_first_refused_call_is_named_with_its_reason():
    assert decide("from ..layers import Router\nRouter(1)\nRouter(*args)\n") == "Router(*args): a star argument"


def test_rewritten_imports_are_those_of_a_translated_file_only():
    source = "from vllm.layers import Router\nRouter(1)\n"
    assert TRANSLATION.rewritten_imports(source, "vllm.models") == {("vllm.layers", "Router")}
    assert TRANSLATION.rewritten_imports(source + "Router(*a)\n", "vllm.models") == set()
    assert TRANSLATION.relevant(source, None) and not TRANSLATION.relevant("import os\n", None)


def test_a_patch_that_gathers_more_gets_its_own_uses_in_both_checks():
    class Counted(Uses):
        def visit_Integer(self, node: cst.Integer) -> None:
            self.strings.append(node.value)

    seen = []
    counted = Translation(
        API, Counted, lambda uses: seen.append(type(uses)), lambda call, uses: seen.append(uses.strings)
    )
    assert counted.refusal(cst.parse_module("from vllm.layers import Router\nRouter(7)\n"), "vllm") is None
    assert seen == [Counted, ["7"]]


@pytest.mark.parametrize("patch", [p18, p19, p20], ids=lambda patch: patch.ID)
def test_every_api_translation_decides_through_the_one_skeleton(patch):
    assert isinstance(patch.TRANSLATION, Translation) and patch.TRANSLATION.api is patch.API
    assert patch.refusal == patch.TRANSLATION.refusal and patch.relevant == patch.TRANSLATION.relevant
    assert patch.rewritten_imports == patch.TRANSLATION.rewritten_imports
    assert issubclass(patch.Transformer, Translated)
