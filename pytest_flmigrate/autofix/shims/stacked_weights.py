# SPDX-License-Identifier: Apache-2.0
"""Upstream vLLM's stacked-weights loading protocol on a vLLM 0.13 pin.

Written into the plugin by pytest-flmigrate (catalog P21) for migrated models that declare
``WeightsMapper(orig_to_new_stacked={".q_proj": (".qkv_proj", "q"), ...})`` and load with
``AutoWeightsLoader``. Upstream (0.31+) maps a checkpoint name to the stacked parameter and a
shard id, and its layers' ``load_weights`` read that id; vLLM 0.13's ``WeightsMapper`` has no
such field and its layers no such method. Here:

- ``WeightsMapper`` is the pin's, plus ``orig_to_new_stacked``, applied in upstream's order
  (substrings, stacked, prefixes, suffixes); a stacked match tags the tensor with ``shard_id``
  (a list of ids loads the same tensor into each shard);
- ``AutoWeightsLoader`` is the pin's, passing a tagged tensor's shard id to the parameter's
  ``weight_loader`` (the pin's stacked layers take it as their third argument), loading the
  checkpoint's per-expert ``experts.<id>.{gate,up,down}_proj`` tensors into the pin's
  ``FusedMoE`` through ``FusedMoE.make_expert_params_mapping`` (what upstream's MoE runner
  does for the same names), and ignoring unexpected ``.bias`` tensors as upstream's loader does.

The pin's own models keep the pin's classes: only the migrated files import these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from vllm.model_executor.layers.fused_moe import FusedMoE
from vllm.model_executor.models import utils as pinned

EXPERT_PROJECTIONS = ("gate_proj", "down_proj", "up_proj")
"""Checkpoint names of a routed expert's projections (upstream's default ``ckpt_names``)."""


@dataclass
class WeightsMapper(pinned.WeightsMapper):
    orig_to_new_stacked: Mapping[str, tuple[str, Any]] = field(default_factory=dict)

    def __or__(self, other: pinned.WeightsMapper) -> WeightsMapper:
        return WeightsMapper(
            orig_to_new_substr={**self.orig_to_new_substr, **other.orig_to_new_substr},
            orig_to_new_stacked={**self.orig_to_new_stacked, **getattr(other, "orig_to_new_stacked", {})},
            orig_to_new_prefix={**self.orig_to_new_prefix, **other.orig_to_new_prefix},
            orig_to_new_suffix={**self.orig_to_new_suffix, **other.orig_to_new_suffix},
        )

    def map_with_shard(self, key: str) -> tuple[str, Any] | None:
        """(new name, shard id or None), or None when the weight is dropped."""
        for substr, new in self.orig_to_new_substr.items():
            if substr in key:
                if new is None:
                    return None
                key = key.replace(substr, new, 1)
        shard_id = None
        for substr, (new, shard) in self.orig_to_new_stacked.items():
            if substr in key:
                key, shard_id = key.replace(substr, new, 1), shard
        for prefix, new in self.orig_to_new_prefix.items():
            if key.startswith(prefix):
                if new is None:
                    return None
                key = key.replace(prefix, new, 1)
        for suffix, new in self.orig_to_new_suffix.items():
            if key.endswith(suffix):
                if new is None:
                    return None
                key = new.join(key.rsplit(suffix, 1))
        return key, shard_id

    def _map_name(self, key: str) -> str | None:
        mapped = self.map_with_shard(key)
        return None if mapped is None else mapped[0]

    def apply(self, weights: Iterable[tuple[str, torch.Tensor]]) -> Iterable[tuple[str, torch.Tensor]]:
        for name, data in weights:
            mapped = self.map_with_shard(name)
            if mapped is None:
                continue
            new_name, shard = mapped
            if shard is None:
                yield new_name, data
                continue
            for index, one in enumerate(shard if isinstance(shard, list) else [shard]):
                tagged = data if index == 0 else data.detach()
                tagged.shard_id = one
                yield new_name, tagged


class AutoWeightsLoader(pinned.AutoWeightsLoader):
    def __init__(self, module: nn.Module, **kwargs: Any) -> None:
        super().__init__(module, **kwargs)
        self.ignore_unexpected_suffixes.append(".bias")

    def _load_param(
        self, base_prefix: str, param: nn.Parameter, weights: Iterable[tuple[str, torch.Tensor]]
    ) -> Iterable[str]:
        for name, data in weights:
            shard = getattr(data, "shard_id", None)
            if shard is None or name != "" or self._can_skip(self._get_qualname(base_prefix, name)):
                yield from super()._load_param(base_prefix, param, [(name, data)])
                continue
            param.weight_loader(param, data, shard)
            yield base_prefix

    def _load_module(
        self, base_prefix: str, module: nn.Module, weights: Iterable[tuple[str, torch.Tensor]]
    ) -> Iterable[str]:
        if isinstance(module, FusedMoE) and module is not self.module:
            yield from self._load_experts(base_prefix, module, weights)
            return
        yield from super()._load_module(base_prefix, module, weights)

    def _load_experts(
        self, base_prefix: str, layer: FusedMoE, weights: Iterable[tuple[str, torch.Tensor]]
    ) -> Iterable[str]:
        params = dict(layer.named_parameters())
        mapping = FusedMoE.make_expert_params_mapping(
            *EXPERT_PROJECTIONS,
            num_experts=layer.logical_num_experts,
            num_redundant_experts=layer.global_num_experts - layer.logical_num_experts,
        )
        for name, data in weights:
            if name in params:  # a parameter of the layer itself, by its own name
                yield from self._load_param(self._get_qualname(base_prefix, name), params[name], [("", data)])
                continue
            qualified = f"experts.{name}"
            for param_name, weight_name, expert_id, shard_id in mapping:
                if weight_name not in qualified:
                    continue
                target = qualified.replace(weight_name, param_name).removeprefix("experts.")
                param = params[target]
                param.weight_loader(param, data, target, shard_id=shard_id, expert_id=expert_id)
                yield self._get_qualname(base_prefix, target)
                break
            else:
                if not self._can_ignore_unexpected(self._get_qualname(base_prefix, name)):
                    raise ValueError(
                        f"There is no expert weight named {self._get_qualname(base_prefix, name)!r} in {type(self.module).__name__}"
                    )
