"""tiny/vllm_weights.py's names, with synthetic models (no torch, no vLLM): a transformers checkpoint
upstream's ``load_weights`` refuses gives way to vLLM's own names, and those names follow the
model's own mappings (its sub-models' fused layers, its expert mapping, its padded vocabulary)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pytest_flmigrate.tiny import vllm_weights


class Tensor:
    """Rows of numbers (or of Tensors): the few tensor operations the names are made with."""

    def __init__(self, rows, **attrs):
        self.rows = list(rows)
        self.__dict__.update(attrs)

    @property
    def shape(self):
        return (len(self.rows),)

    def dim(self):
        first = self.rows[0] if self.rows else None
        if isinstance(first, Tensor):
            return 1 + first.dim()
        return 2 if isinstance(first, list) else 1

    def detach(self):
        return self

    def clone(self):
        return Tensor(self.rows)

    def split(self, sizes, dim=0):
        assert dim == 0
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        return [Tensor(self.rows[start : start + size]) for start, size in zip(starts, sizes)]

    def chunk(self, parts, dim=0):
        return self.split([len(self.rows) // parts] * parts, dim)

    def __getitem__(self, index):
        return Tensor(self.rows[index]) if isinstance(index, slice) else self.rows[index]

    def __eq__(self, other):
        return isinstance(other, Tensor) and self.rows == other.rows

    __hash__ = None  # type: ignore[assignment]


class Model:
    """A model of named modules (``path -> attributes``) and parameters (``name -> Tensor``)."""

    def __init__(self, modules, params, load=None, **attrs):
        self.tree = {"": SimpleNamespace(**attrs), **{path: SimpleNamespace(**a) for path, a in modules.items()}}
        self.params = params
        self.load = load

    def modules(self):
        return list(self.tree.values())

    def named_modules(self):
        return list(self.tree.items())

    def named_parameters(self):
        return list(self.params.items())

    def get_submodule(self, path):
        return self.tree[path]

    def get_expert_mapping(self):
        return self.tree[""].experts_mapping

    def load_weights(self, weights):
        return self.load(dict(weights))


def test_a_checkpoint_load_weights_refuses_is_said_and_one_it_takes_is_not():
    params = {"model.embed_tokens.weight": Tensor([1]), "model.norm.weight": Tensor([2])}

    def strict(weights):
        for name in weights:
            if name not in params:
                raise ValueError(f"There is no module or parameter named '{name}' in Model")
        return set(weights)

    model = Model({}, params, load=strict)
    assert vllm_weights.accepted(model, {name: Tensor([0]) for name in params}) == ""
    refused = {"model.model.embed_tokens.weight": Tensor([0]), "model.norm.weight": Tensor([0])}
    assert vllm_weights.accepted(model, refused) == (
        "load_weights refused them: ValueError: There is no module or parameter named "
        "'model.model.embed_tokens.weight' in Model"
    )
    partial = Model({}, params, load=lambda weights: {"model.norm.weight"})
    assert vllm_weights.accepted(partial, {}) == (
        "load_weights does not name 1 parameter(s) as loaded, first model.embed_tokens.weight"
    )


def test_transformers_names_upstream_refuses_give_way_to_vllms_own(tmp_path, monkeypatch):
    made = []
    model = Model({}, {}, load=lambda weights: (_ for _ in ()).throw(KeyError("layers.0.self_attn.k_norm.weight")))
    monkeypatch.setattr(vllm_weights, "build", lambda *args, **kwargs: model)
    monkeypatch.setattr(vllm_weights, "saved", lambda out_dir: {"layers.0.self_attn.k_norm.weight": Tensor([1])})
    monkeypatch.setattr(
        vllm_weights, "synthesized", lambda *args: made.append(args) or vllm_weights.Found(7, "vLLM's", "")
    )
    refused, found = vllm_weights.check(tmp_path, "HYV3ForCausalLM", 0, trust_remote_code=False)
    assert refused == "load_weights refused them: KeyError: 'layers.0.self_attn.k_norm.weight'"
    assert found == vllm_weights.Found(7, "vLLM's", "") and made == [(model, tmp_path, "HYV3ForCausalLM", 0)]

    model.load = lambda weights: set()  # taken: transformers' checkpoint stays
    assert vllm_weights.check(tmp_path, "HYV3ForCausalLM", 0, trust_remote_code=False) == ("", None)

    def cannot_build(*args, **kwargs):
        raise RuntimeError("no CPU backend")

    monkeypatch.setattr(vllm_weights, "build", cannot_build)  # nothing to judge by: it stays too
    assert vllm_weights.check(tmp_path, "HYV3ForCausalLM", 0, trust_remote_code=False) == ("", None)


def test_no_names_upstream_takes_leave_no_checkpoint(tmp_path, monkeypatch):
    (tmp_path / vllm_weights.WEIGHTS).write_bytes(b"refused")
    model = Model({}, {"a.weight": Tensor([1])}, load=lambda weights: set())
    monkeypatch.setattr(vllm_weights, "build", lambda *args, **kwargs: model)
    monkeypatch.setattr(vllm_weights, "saved", lambda out_dir: {})
    monkeypatch.setattr(vllm_weights, "synthesized", lambda *args: vllm_weights.Found(None, "", "none accepted"))
    refused, found = vllm_weights.check(tmp_path, "X", 0, trust_remote_code=False)
    assert refused.startswith("load_weights does not name 1") and found is not None and found.parameters is None
    assert not (tmp_path / vllm_weights.WEIGHTS).exists()


def test_vllms_names_split_a_sub_models_fused_layers_its_experts_by_its_mapping_and_the_vocabulary():
    qkv = Tensor([[1], [2], [3], [4]])
    experts = Tensor([Tensor([[10], [11]]), Tensor([[20], [21]])])  # 2 experts, gate then up
    down = Tensor([Tensor([[30]]), Tensor([[40]])])
    embed = Tensor([[0], [1], [2], [0]])  # 3 rows of vocabulary, padded to 4
    params = {
        "language_model.model.layers.0.feed_forward.w13.weight": qkv,
        "language_model.model.layers.1.mlp.experts.routed_experts.w13_weight": experts,
        "language_model.model.layers.1.mlp.experts.routed_experts.w2_weight": down,
        "language_model.model.embed_tokens.weight": embed,
    }
    mapping = [
        (f"experts.routed_experts.{param}", f"experts.{expert}.{name}.", expert, shard)
        for expert in range(2)
        for param, name, shard in (("w13_", "gate_proj", "w1"), ("w13_", "up_proj", "w3"), ("w2_", "down_proj", "w2"))
    ] + [("experts.w13_", "experts.0.gate_proj.", 0, "w1")]  # a less specific entry: passed over
    model = Model(
        {
            "language_model": {"packed_modules_mapping": {"w13": ["w1", "w3"]}},  # the sub-model's own
            "language_model.model.layers.0.feed_forward.w13": {"output_sizes": [2, 2]},
            "language_model.model.layers.1.mlp.experts.routed_experts": {},
            "language_model.model.embed_tokens": {"org_vocab_size": 3},
        },
        params,
        packed_modules_mapping={"qkv_proj": ["q_proj", "k_proj", "v_proj"]},
        experts_mapping=mapping,
    )
    found = vllm_weights.checkpoint_tensors(model, vllm_weights.EXPERT_NAMES[0])
    assert found == {
        "language_model.model.layers.0.feed_forward.w1.weight": Tensor([[1], [2]]),
        "language_model.model.layers.0.feed_forward.w3.weight": Tensor([[3], [4]]),
        "language_model.model.layers.1.mlp.experts.0.gate_proj.weight": Tensor([[10]]),
        "language_model.model.layers.1.mlp.experts.0.up_proj.weight": Tensor([[11]]),
        "language_model.model.layers.1.mlp.experts.1.gate_proj.weight": Tensor([[20]]),
        "language_model.model.layers.1.mlp.experts.1.up_proj.weight": Tensor([[21]]),
        "language_model.model.layers.1.mlp.experts.0.down_proj.weight": Tensor([[30]]),
        "language_model.model.layers.1.mlp.experts.1.down_proj.weight": Tensor([[40]]),
        "language_model.model.embed_tokens.weight": Tensor([[0], [1], [2]]),
    }


CONVENTIONAL = ["layers.1.experts.0.gate_proj.weight", "layers.1.experts.0.up_proj.weight"]


@pytest.mark.parametrize("mapping", [[], [("experts.w13_", "experts.0.w1.", 0, "w1")]], ids=["none", "partial"])
def test_without_a_mapping_covering_every_shard_experts_take_the_conventional_names(mapping):
    """No ``get_expert_mapping`` (or one missing a shard): ``FusedMoE.make_expert_params_mapping``'s names."""
    model = Model(
        {"layers.1.experts": {}}, {"layers.1.experts.w13_weight": Tensor([Tensor([[1], [2]])])}, experts_mapping=mapping
    )
    assert sorted(vllm_weights.checkpoint_tensors(model, vllm_weights.EXPERT_NAMES[0])) == CONVENTIONAL


def test_experts_wrapped_by_another_module_are_tried_under_the_wrappers_name():
    """``FusedMoEFactory`` puts the fused experts at ``experts.routed_experts``; a model without an
    expert mapping of its own loads them from ``experts.<e>.gate_proj.weight``."""
    model = Model(
        {"mlp.experts.routed_experts": {}}, {"mlp.experts.routed_experts.w13_weight": Tensor([Tensor([[1], [2]])])}
    )
    assert ((vllm_weights.EXPERT_NAMES[0], True)) in vllm_weights.EXPERT_SPELLINGS
    assert sorted(vllm_weights.checkpoint_tensors(model, vllm_weights.EXPERT_NAMES[0], wrapped=True)) == [
        "mlp.experts.0.gate_proj.weight",
        "mlp.experts.0.up_proj.weight",
    ]


def test_a_model_whose_loader_reads_other_files_gets_no_weights_it_would_not_find(tmp_path):
    """Cosmos 3's class loads only ``[tv]*er/*.safetensors``: a root ``model.safetensors`` would
    leave both servers without weights, so none is written (the servers load dummy weights)."""

    class Cosmos3(Model):
        allow_patterns_overrides = ["[tv]*er/*.safetensors"]

    model = Cosmos3({}, {"a.weight": Tensor([1])}, load=lambda weights: set(weights))
    found = vllm_weights.synthesized(model, tmp_path, "Cosmos3ForConditionalGeneration", 0)
    assert found == vllm_weights.Found(
        None, "", "vLLM loads Cosmos3ForConditionalGeneration's weights only from files matching [tv]*er/*.safetensors"
    )
    assert not (tmp_path / vllm_weights.WEIGHTS).exists()
