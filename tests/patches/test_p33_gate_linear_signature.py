from textwrap import dedent

import pytest

from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import p33_gate_linear_signature as p33
from pytest_flmigrate.patches.translation import SHIMS, shim_function
from tests.fixtures.trees import write

IMPORT = "from vllm.model_executor.layers.fused_moe import FusedMoEFactory, GateLinear\n"
SHIM = "from vllm.model_executor.layers.fused_moe import FusedMoEFactory\nfrom vllm_fl.compat.gate_linear import GateLinear\n"
PACKAGE = "vllm.model_executor.models"


def gate(args: str) -> str:
    return IMPORT + dedent(f"""\
        class MoE(nn.Module):
            def __init__(self):
                self.gate = GateLinear({args})
        """)


K2_HORIZON = "h, n, bias=config.moe_gate_bias, skip_bias_add=True, quant_config=quant_config, prefix=f'{prefix}.gate'"
"""k2_horizon's gate (0.32.0): arguments vLLM 0.24's GateLinear lacks."""


@pytest.mark.parametrize("args", [K2_HORIZON, "h, n, out_dtype=torch.float32, params_dtype=torch.float32", "h, n"])
def test_the_import_points_at_the_shim_and_the_calls_stay(rewrite, args):
    before = gate(args)
    assert p33.refusal(before, PACKAGE) is None
    assert rewrite(p33, before) == (before.replace(IMPORT, SHIM), 1)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ("h, n, return_bias=False", "return_bias=False has no spelling on the pin's GateLinear (it takes True)"),
        ("h, n, quant_config=QuantConfig()", None),
        ("h, n, fused=True", "fused= has no spelling on the pin's GateLinear"),
        ("h, n, False, None, None, False, False, None, 'p', True, 1", "more than 10 positional arguments"),
        ("*args", "*args/**kwargs cannot be checked"),
    ],
)
def test_a_value_without_a_pinned_spelling_is_refused_and_a_run_time_one_left_to_the_shim(rewrite, args, reason):
    found = p33.refusal(gate(args), PACKAGE)
    if reason is None:
        assert found is None
        return
    assert found is not None and found.line == 4 and reason in found.reason, found
    assert rewrite(p33, gate(args)) == (gate(args), 0)


def test_the_keywords_checked_are_the_shims_constructor_without_self():
    shim = shim_function(p33.SHIM, p33.API.name)
    assert shim.positional[:2] == ("input_size", "output_size") and "self" not in shim.keywords
    assert {"skip_bias_add", "quant_config", "return_bias", "out_dtype"} <= shim.keywords
    assert shim.accepted == {"quant_config": (None,), "return_bias": (True,)}


def pin_with_gate(tmp_path, parameters: str) -> Resolver:
    moe = "vllm/model_executor/layers/fused_moe"
    write(
        tmp_path,
        {
            "vllm/__init__.py": "",
            "vllm/model_executor/__init__.py": "",
            "vllm/model_executor/layers/__init__.py": "",
            f"{moe}/__init__.py": f"class GateLinear:\n    def __init__(self, {parameters}):\n        pass\n",
        },
    )
    return Resolver([index_directory(tmp_path, "vllm")])


def test_the_patch_applies_where_the_pins_gate_lacks_an_argument_of_upstreams(tmp_path):
    older = (
        "input_size, output_size, bias=False, out_dtype=None, params_dtype=None, force_fp32_compute=False, prefix=''"
    )
    assert p33.pin_gap(pin_with_gate(tmp_path / "older", older)) is None
    upstreams = ", ".join(shim_function(p33.SHIM, p33.API.name).keywords)
    assert p33.pin_gap(pin_with_gate(tmp_path / "same", upstreams)) == "the pin's GateLinear takes upstream's arguments"
    assert p33.pin_gap(pin_with_gate(tmp_path / "kwargs", "input_size, **kwargs")) is not None


def test_a_pin_without_gate_linear_is_p18s(tmp_path):
    write(tmp_path, {"vllm/__init__.py": ""})
    why = p33.pin_gap(Resolver([index_directory(tmp_path, "vllm")]))
    assert why == "the pin has no GateLinear class to give upstream's signature (P18 translates it)"


def test_the_shim_keeps_its_import_of_the_pins_gate(rewrite):
    shim = (SHIMS / f"{p33.SHIM}.py").read_text(encoding="utf-8")
    assert "from vllm.model_executor.layers.fused_moe import GateLinear as PinnedGateLinear" in shim
    assert rewrite(p33, shim, module_name=f"vllm_fl.compat.{p33.SHIM}") == (shim, 0)
