"""Functional: vLLM loads the plugin through its general-plugin entry point, and every model it
registers loads. Skips where vLLM is not installed."""

import importlib.metadata

import pytest


def test_entry_point_registers_loadable_models():
    pytest.importorskip("vllm")
    entry_points = [
        ep for ep in importlib.metadata.entry_points(group="vllm.general_plugins") if ep.value.startswith("vllm_fl")
    ]
    assert entry_points, "vllm_fl's vllm.general_plugins entry point is not installed"

    from vllm.model_executor.models.registry import ModelRegistry
    from vllm.plugins import load_general_plugins

    load_general_plugins()
    ours = {
        arch: entry
        for arch, entry in ModelRegistry.models.items()
        if getattr(entry, "module_name", "").startswith("vllm_fl.")
    }
    for arch, entry in ours.items():
        cls = entry.load_model_cls()
        assert cls.__module__ == entry.module_name, arch
