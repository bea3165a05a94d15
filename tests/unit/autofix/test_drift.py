"""Signature drift at step 4: calls into a class or function the pin has in an older shape, on small trees.

The pinned ``layers`` module has a decoder layer without ``attn_layer_type`` and a model whose
``forward`` takes no extra keywords; upstream's takes both (the model hands them to its layers
through ``**kwargs``), and its model declares a mapper field the pin's ``Mapper`` lacks. The
pinned ``copying`` module's ``to_device`` takes ``(data, dtype, target_device)``, upstream's
``(data, device=None, dtype=None)``; its ``kernel_copy`` calls a kernel upstream.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from packaging.version import Version

from pytest_flmigrate.autofix import drift, planner
from pytest_flmigrate.autofix.backport import Backporter
from pytest_flmigrate.autofix.relocate import Relocator
from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import select_patches
from pytest_flmigrate.review import MigratedFile, ReviewContext, review
from pytest_flmigrate.steps import migrate
from tests.fixtures.plans import plan_for
from tests.fixtures.trees import VLLM_CORE, write

PIN = Version("0.13.0")
LAYERS = "vllm.model_executor.models.layers"
COMPAT = "vllm_fl.compat.model_executor.models.layers"

PINNED_LAYERS = """
    import torch.nn as nn
    from dataclasses import dataclass, field


    @dataclass
    class Mapper:
        prefix: dict = field(default_factory=dict)


    class Attention(nn.Module):
        def __init__(self, config, prefix=""):
            super().__init__()


    class MLP(nn.Module):
        def __init__(self, config, prefix=""):
            super().__init__()


    class DecoderLayer(nn.Module):
        def __init__(self, config, prefix=""):
            super().__init__()
            self.self_attn = Attention(config, prefix=prefix)
            self.mlp = MLP(config, prefix=prefix)

        def forward(self, positions, hidden_states):
            return self.mlp(self.self_attn(positions, hidden_states))


    class Model(nn.Module):
        def __init__(self, config, layer_type=DecoderLayer):
            super().__init__()
            self.layers = nn.ModuleList([layer_type(config)])

        def forward(self, positions, hidden_states):
            for layer in self.layers:
                hidden_states = layer(positions, hidden_states)
            return hidden_states
"""
UPSTREAM_LAYERS = """
    import torch.nn as nn
    from dataclasses import dataclass, field


    @dataclass
    class Mapper:
        prefix: dict = field(default_factory=dict)
        stacked: dict = field(default_factory=dict)


    class Attention(nn.Module):
        def __init__(self, config, prefix=""):
            super().__init__()


    class MLP(nn.Module):
        def __init__(self, config, prefix=""):
            super().__init__()


    class DecoderLayer(nn.Module):
        def __init__(self, config, prefix="", attn_layer_type=Attention):
            super().__init__()
            self.self_attn = attn_layer_type(config, prefix=prefix)
            self.mlp = MLP(config, prefix=prefix)

        def forward(self, positions, hidden_states):
            return self.mlp(self.self_attn(positions, hidden_states))


    class Model(nn.Module):
        mapper = Mapper(stacked={".q_proj": (".qkv_proj", "q")})

        def __init__(self, config, layer_type=DecoderLayer):
            super().__init__()
            self.layers = nn.ModuleList([layer_type(config)])

        def forward(self, positions, hidden_states, **extra_layer_kwargs):
            for layer in self.layers:
                hidden_states = layer(positions, hidden_states, **extra_layer_kwargs)
            return hidden_states
"""
MODEL_HEAD = """
    import torch.nn as nn
    from vllm.model_executor.models.layers import Attention, DecoderLayer, Model


    class ScaledAttention(Attention):
        pass


    class ScaledDecoderLayer(DecoderLayer):
        def __init__(self, config, prefix=""):
            super().__init__(config, prefix=prefix, attn_layer_type=ScaledAttention)
            self.cond = nn.Linear(4, 4) if config.cond else None

        def forward(self, positions, hidden_states, t_cond=None):
            hidden_states = super().forward(positions, hidden_states)
            if self.cond is not None:
                hidden_states = hidden_states * self.cond(t_cond)
            return hidden_states
"""
DRIFTY = (
    MODEL_HEAD
    + """

    class ScaledModel(Model):
        def __init__(self, config):
            super().__init__(config, layer_type=ScaledDecoderLayer)

        def forward(self, positions, hidden_states, t_cond=None):
            return super().forward(positions, hidden_states, t_cond=t_cond)
"""
)
# the same, but the model gives t_cond a value of its own: dropping it would lose that value
VALUED = (
    MODEL_HEAD
    + """

    class ScaledModel(Model):
        def forward(self, positions, hidden_states):
            return super().forward(positions, hidden_states, t_cond=positions)
"""
)


PINNED_COPYING = """
    import torch


    def to_device(data, dtype, target_device):
        return torch.tensor(data, dtype=dtype).to(target_device)


    def kernel_copy(data, dtype, target_device):
        return torch.tensor(data, dtype=dtype).to(target_device)


    def setup(cls, dims, invariants=None):
        return cls
"""
UPSTREAM_COPYING = """
    import torch


    def to_device(data, device=None, dtype=None):
        t = data if isinstance(data, torch.Tensor) else torch.tensor(data, dtype=dtype)
        return t.to(device=device, dtype=dtype)


    def kernel_copy(data, device=None, dtype=None):
        return torch.ops._C.copy_to(data, device, dtype)


    def setup(cls, dims, is_encoder=False):
        return cls
"""
POOLING = """
    from vllm.model_executor.models.copying import to_device


    def gather(idx, device):
        return to_device(idx, device=device)
"""
GATHERER = """
    from vllm.model_executor.models.pooling import gather


    class Gatherer:
        def forward(self, idx, device):
            return gather(idx, device)
"""
COPIER = """
    from vllm.model_executor.models.copying import kernel_copy, setup, to_device


    class Copier:
        def forward(self, idx, device):
            return to_device(idx, device=device), kernel_copy(idx, device=device), to_device(idx, dtype=None)

        def encoder(self, cls):
            return setup(cls, {}, True), setup(cls, {})
"""


UTILS = """
    from dataclasses import dataclass, field


    @dataclass
    class WeightsMapper:
        orig_to_new_prefix: dict = field(default_factory=dict)
        {stacked}

    class AutoWeightsLoader:
        def __init__(self, module):
            self.module = module
"""
# a drifting WeightsMapper(orig_to_new_stacked=...) that P21 translates: the port's, not a backport
STACKED = """
    from vllm.model_executor.models.utils import AutoWeightsLoader, WeightsMapper


    class StackedModel:
        hf_to_vllm_mapper = WeightsMapper(orig_to_new_stacked={".q_proj": (".qkv_proj", "q")})

        def load_weights(self, weights):
            return AutoWeightsLoader(self).load_weights(weights, mapper=self.hf_to_vllm_mapper)
"""


@pytest.fixture(scope="module")
def fixer(tmp_path_factory) -> planner.Fixer:
    base = tmp_path_factory.mktemp("drift")
    models = "vllm/model_executor/models"
    upstream = write(
        base / "upstream",
        {
            **VLLM_CORE,
            f"{models}/layers.py": UPSTREAM_LAYERS,
            f"{models}/drifty.py": DRIFTY,
            f"{models}/valued.py": VALUED,
            f"{models}/stacked.py": STACKED,
            f"{models}/copying.py": UPSTREAM_COPYING,
            f"{models}/copier.py": COPIER,
            f"{models}/pooling.py": POOLING,
            f"{models}/gatherer.py": GATHERER,
            f"{models}/utils.py": UTILS.replace(
                "{stacked}", "orig_to_new_stacked: dict = field(default_factory=dict)\n"
            ),
        },
    )
    pinned = write(
        base / "pinned",
        {
            **VLLM_CORE,
            f"{models}/layers.py": PINNED_LAYERS,
            f"{models}/utils.py": UTILS.replace("{stacked}", ""),
            f"{models}/copying.py": PINNED_COPYING,
        },
    )
    upstream_resolver = Resolver([index_directory(upstream, "vllm", "0.99.0")])
    pinned_resolver = Resolver([index_directory(pinned, "vllm", "0.13.0")])
    relocator = Relocator(upstream_resolver, pinned_resolver)
    return planner.Fixer(
        upstream_resolver, pinned_resolver, relocator, Backporter(upstream_resolver, pinned_resolver, relocator)
    )


def migrated(fixer: planner.Fixer, plan: migrate.MigrationPlan, patches: str | None = None) -> dict[str, str]:
    pinned = SimpleNamespace(version=PIN, transformers_version=Version("4.57.6"))
    return {
        target: text for target, (text, _) in migrate.patched_texts(plan, select_patches(patches, PIN), pinned).items()
    }


def test_the_drifting_calls_are_found_with_what_upstream_does_with_each_keyword(fixer):
    module = "vllm.model_executor.models.drifty"
    index = fixer.upstream.index_for(module)
    text = (index.root / index.modules[module].path).read_text()
    found = {(d.owner, d.member): d for d in drift.drifts(text, module, False, fixer.pinned, fixer.upstream)}
    assert set(found) == {(f"{LAYERS}.DecoderLayer", "__init__"), (f"{LAYERS}.Model", "forward")}
    layer, model = found[(f"{LAYERS}.DecoderLayer", "__init__")], found[(f"{LAYERS}.Model", "forward")]
    assert (layer.keywords, layer.named, layer.imported) == (("attn_layer_type",), True, (LAYERS, "DecoderLayer"))
    assert (model.keywords, model.named, model.forwarded) == (("t_cond",), False, True)


def test_before_and_after_the_base_is_backported_and_the_forwarded_default_dropped(fixer):
    plan = plan_for(fixer, "drifty")
    # DecoderLayer: upstream's copy keeps the pin's Attention and MLP (shared) and takes the keyword
    assert plan.backports == {(LAYERS, "DecoderLayer"): (COMPAT, "DecoderLayer")}
    (compat,) = [f for f in plan.files if f.role == "compat"]
    assert compat.compat.keep == ("DecoderLayer",) and compat.compat.from_pin == ("Attention", "MLP")
    # Model: its copy would declare Mapper(stacked=...), which the pin's Mapper lacks: refused, and the
    # forwarded t_cond (always None at the pin, None by default in every layer) is dropped instead
    assert plan.forwarded_defaults == {"vllm.model_executor.models.drifty": {("ScaledModel", "forward", "t_cond")}}
    assert not plan.unfixed
    texts = migrated(fixer, plan)
    model = texts["vllm_fl/models/drifty.py"]
    assert "from vllm.model_executor.models.layers import Attention, Model\n" in model
    assert f"from {COMPAT} import DecoderLayer\n" in model
    assert (
        "super().__init__(config, prefix=prefix, attn_layer_type=ScaledAttention)" in model
    )  # kept: the copy takes it
    assert "return super().forward(positions, hidden_states)\n" in model
    copy = texts["vllm_fl/compat/model_executor/models/layers.py"]
    assert "attn_layer_type=Attention" in copy and "class Model" not in copy
    assert "from vllm.model_executor.models.layers import Attention, MLP" in copy


def test_a_value_of_its_own_is_not_dropped_and_step_6_is_told_why(fixer):
    plan = plan_for(fixer, "valued")
    assert not plan.forwarded_defaults
    reason = plan.unfixed[(f"{LAYERS}.Model", "forward")]
    assert reason.startswith("backporting upstream's Model was refused: its copy would call ")
    assert f"{LAYERS}.Mapper.__init__(stacked=)" in reason
    assert reason.endswith("the value is not the override's own parameter defaulting to None")


def test_without_p16_and_p23_nothing_is_fixed(fixer):
    plan = plan_for(fixer, "drifty", "P1,P15")
    assert (plan.backports, plan.forwarded_defaults) == ({}, {})
    texts = migrated(fixer, plan, "P1,P15")
    assert "t_cond=t_cond" in texts["vllm_fl/models/drifty.py"]


def test_a_drifting_class_a_translation_rewrites_is_left_to_the_translation(fixer):
    """cohere2_moe: upstream's WeightsMapper takes orig_to_new_stacked, the pin's does not; P21 points
    the file at its port (with AutoWeightsLoader), so no backport of upstream's WeightsMapper alone."""
    utils = "vllm.model_executor.models.utils"
    plan = plan_for(fixer, "stacked")
    assert (utils, "WeightsMapper") not in plan.backports and not plan.unfixed
    model = migrated(fixer, plan)["vllm_fl/models/stacked.py"]
    assert "from vllm_fl.compat.stacked_weights import AutoWeightsLoader, WeightsMapper\n" in model


def test_step_4_and_step_6_find_the_same_drifting_calls(fixer, tmp_path):
    """One finder: the calls step 4 fixes are those step 6's call-signatures check reports on the
    file migrated without the fixes, at the same lines, naming the same pinned callees."""
    module = "vllm.model_executor.models.drifty"
    index = fixer.upstream.index_for(module)
    text = (index.root / index.modules[module].path).read_text()
    found = {(d.line, f"{d.owner}.{d.member}") for d in drift.drifts(text, module, False, fixer.pinned, fixer.upstream)}
    target = "vllm_fl/models/drifty.py"
    (tmp_path / "vllm_fl" / "models").mkdir(parents=True)
    (tmp_path / "vllm_fl" / "__init__.py").write_text("")
    (tmp_path / "vllm_fl" / "models" / "__init__.py").write_text("")
    (tmp_path / target).write_text(migrated(fixer, plan_for(fixer, "drifty", "P1,P15"), "P1,P15")[target])
    pinned_index = fixer.pinned.index_for(module)
    assert pinned_index is not None
    context = ReviewContext(tmp_path, [pinned_index], [MigratedFile.at(target, "model", module)])
    reported = {
        (finding.line, qualname)
        for finding in review(context, ["call-signatures"])
        for qualname in (f"{LAYERS}.DecoderLayer.__init__", f"{LAYERS}.Model.forward")
        if f"pinned {qualname}(" in finding.message
    }
    assert found == reported and len(found) == 2


def test_a_function_called_with_upstreams_signature_is_backported_and_a_kernel_one_left_with_why(fixer):
    copying = "vllm.model_executor.models.copying"
    module = "vllm.model_executor.models.copier"
    index = fixer.upstream.index_for(module)
    text = (index.root / index.modules[module].path).read_text()
    found = [(d.owner, d.member, d.keywords) for d in drift.drifts(text, module, False, fixer.pinned, fixer.upstream)]
    # an unknown keyword, an argument the pin requires (target_device) that upstream's defaults, and
    # a positional argument landing in another parameter (is_encoder upstream, invariants at the pin)
    assert found == [
        (f"{copying}.to_device", "", ("device",)),
        (f"{copying}.kernel_copy", "", ("device",)),
        (f"{copying}.to_device", "", ()),
        (f"{copying}.setup", "", ()),
    ]
    plan = plan_for(fixer, "copier")
    compat = "vllm_fl.compat.model_executor.models.copying"
    assert plan.backports == {(copying, "to_device"): (compat, "to_device"), (copying, "setup"): (compat, "setup")}
    assert plan.unfixed[(copying, "kernel_copy")].startswith(
        "backporting upstream's kernel_copy was refused: it calls torch.ops kernels"
    )
    model = migrated(fixer, plan)["vllm_fl/models/copier.py"]
    assert f"from {copying} import kernel_copy\n" in model
    assert "from vllm_fl.compat.model_executor.models.copying import setup, to_device\n" in model


def test_a_copy_calling_a_pinned_function_as_upstream_does_gets_upstreams_function_too(fixer):
    """The pooler stack's copied StepPool calls async_tensor_h2d(idx, device): backported for it."""
    copying, pooling = "vllm.model_executor.models.copying", "vllm.model_executor.models.pooling"
    plan = plan_for(fixer, "gatherer")
    assert plan.backports == {
        (pooling, "gather"): ("vllm_fl.compat.model_executor.models.pooling", "gather"),
        (copying, "to_device"): ("vllm_fl.compat.model_executor.models.copying", "to_device"),
    }
    assert not plan.unfixed
    copy = migrated(fixer, plan)["vllm_fl/compat/model_executor/models/pooling.py"]
    assert "from vllm_fl.compat.model_executor.models.copying import to_device\n" in copy
