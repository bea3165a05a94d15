"""tiny/vllm_weights.py's proof, in the upstream env's torch: a checkpoint is kept only when
``load_weights`` restores every parameter and names each one vLLM's loader tracks as loaded
(a side path that fills a norm without naming it made servers refuse the tiny checkpoint with
"Following weights were not initialized from checkpoint")."""

from __future__ import annotations

from pytest_flmigrate.tiny import vllm_weights
from tests.runtime.in_env import run_in_env

SCRIPT = """
import sys

import torch

sys.path.insert(0, sys.argv[1])
import vllm_weights


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Module()])
        self.layers[0].proj = torch.nn.Linear(2, 2, bias=False)
        self.layers[0].input_layernorm = torch.nn.Module()
        self.layers[0].input_layernorm.weight = torch.nn.Parameter(torch.ones(2))
        self.layers[0].experts = torch.nn.Linear(2, 2, bias=False)  # vLLM's loader tracks it not
        self.layers[0].experts.quant_method = type("Method", (), {"process_weights_after_loading": print})()

    def load_weights(self, weights):
        params, loaded = dict(self.named_parameters()), set()
        for name, tensor in weights:
            if name == "layers.0.weight":  # a side path: fills the norm, names nothing
                params["layers.0.input_layernorm.weight"].data.copy_(tensor)
                continue
            params[name].data.copy_(tensor)
            if "experts" not in name:
                loaded.add(name)
        return loaded


model = Model()
tensors = {name: param.detach().clone() + 1 for name, param in model.named_parameters()}
with torch.no_grad():
    for name, param in model.named_parameters():
        param.copy_(tensors[name])
print(repr(vllm_weights.prove(model, tensors)))
respelled = vllm_weights.respelled(model, tensors)
print(sorted(respelled))
print(all(torch.equal(param, tensors[name]) for name, param in model.named_parameters()))
side = {**tensors, "layers.0.weight": tensors["layers.0.input_layernorm.weight"]}
del side["layers.0.input_layernorm.weight"]
print(repr(vllm_weights.prove(model, side)))
"""


def test_a_parameter_load_weights_fills_without_naming_it_is_not_proven(upstream_python, tmp_path):
    script = tmp_path / "proof.py"
    script.write_text(SCRIPT)
    package = str(vllm_weights.__file__).rsplit("/", 1)[0]
    own, respelled, kept, side = run_in_env(upstream_python, str(script), package, label="proof").splitlines()
    assert own == "''"  # the experts, unnamed, are a layer vLLM's loader does not track
    assert respelled == "['layers.0.experts.weight', 'layers.0.input_layernorm.weight', 'layers.0.proj.weight']"
    assert kept == "True"  # the tries zero the parameters; the model gets its values back for the proof
    assert side == "'load_weights does not name 1 parameter(s) as loaded, first layers.0.input_layernorm.weight'"
