"""--tiny: the environment variables the control is served with, so that it runs the pin's code path.

Upstream vLLM picks some code paths of a model from tables of model types in its own source; a pin
whose table lacks a migrated model's type runs the model's other path, the one upstream runs too
when one of its switches says so. The control is then served with that switch set, so that step 11
compares the port with upstream's same path, and the run says that the pin runs the model without
the feature (a gap of the port on any hardware, not of the tiny model). ``SWITCHES`` holds them:

- multi-head latent attention (``is_deepseek_mla``, ``index/registries.mla_model_types``): a pin
  lacking the type builds the model's attention without MLA, caching whole heads; upstream does so
  with ``VLLM_MLA_DISABLE=1``.

The type is the text config's ``model_type``, as vLLM tests it (``text_config`` where the config
has one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate.index import registries


@dataclass(frozen=True)
class Switch:
    feature: str
    model_types: Callable[[Path], frozenset[str]]  # a vLLM tree's package folder -> its table
    variable: str
    value: str


SWITCHES = (Switch("multi-head latent attention", registries.mla_model_types, "VLLM_MLA_DISABLE", "1"),)


@dataclass(frozen=True)
class Aligned:
    """The control's environment and, per switch set, what the pin lacks."""

    env: dict[str, str]
    notes: tuple[str, ...]


def text_model_type(config: dict) -> str | None:
    """The ``model_type`` vLLM tests: the text config's, else the config's own."""
    text = config.get("text_config")
    model_type = text.get("model_type") if isinstance(text, dict) else None
    return model_type or config.get("model_type")


def aligned(config: dict, upstream_dir: Path, pinned_dir: Path, pinned_version: str) -> Aligned:
    """The switches of ``SWITCHES`` the control needs for the model of ``config`` (a config.json)."""
    model_type = text_model_type(config)
    env: dict[str, str] = {}
    notes: list[str] = []
    for switch in SWITCHES:
        if model_type in switch.model_types(upstream_dir) and model_type not in switch.model_types(pinned_dir):
            env[switch.variable] = switch.value
            notes.append(
                f"vLLM {pinned_version} serves model type {model_type} without {switch.feature} (its table "
                f"lacks the type): the control runs upstream's same path ({switch.variable}={switch.value})"
            )
    return Aligned(env, tuple(notes))
