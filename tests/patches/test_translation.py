"""The skeleton the API translations share: one file's decision from its uses of the API."""

from textwrap import dedent

import libcst as cst

from pytest_flmigrate.patches.translation import Api, refusal_of

API = Api("Router", ("vllm.layers",))
refusal = refusal_of(
    API,
    lambda uses: "used other than called" if uses.others else None,
    lambda call: "a star argument" if any(arg.star for arg in call.args) else None,
)


def decide(source: str) -> str | None:
    return refusal(cst.parse_module(dedent(source)), "vllm.models")


def test_a_file_whose_every_call_is_accepted_is_translated():
    assert decide("from vllm.layers import Router as R\nr = R(1, bias=False)\n") is None


def test_a_file_not_importing_the_api_is_left_alone_naming_where_it_comes_from():
    assert decide("from elsewhere import Router\nRouter()\n") == "not imported from vllm.layers"


def test_the_file_check_comes_before_the_calls():
    assert decide("from vllm.layers import Router\nRouter(*a)\nx = Router\n") == "used other than called"


def test_the_first_refused_call_is_named_with_its_reason():
    assert decide("from ..layers import Router\nRouter(1)\nRouter(*args)\n") == "Router(*args): a star argument"
