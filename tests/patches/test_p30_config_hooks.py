"""P30: the copied config hooks' base points at the shim, where the pin's base lacks the model hook."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import p30_config_hooks as p30
from pytest_flmigrate.patches.translation import SHIMS
from tests.fixtures.trees import write

BASE_IMPORT = "from vllm.model_executor.models.config import VerifyAndUpdateConfig\n"
HOOK = "class VoyageConfig(VerifyAndUpdateConfig):\n    pass\n"


def test_the_base_import_points_at_the_shim(rewrite):
    assert rewrite(p30, BASE_IMPORT + HOOK) == (
        "from vllm_fl.compat.config_hook import VerifyAndUpdateConfig\n" + HOOK,
        1,
    )
    other = "from vllm.model_executor.models.config import MODELS_CONFIG_MAP\n"
    assert rewrite(p30, other) == (other, 0)


def base(*methods: str) -> str:
    body = "".join(f"    @staticmethod\n    def {m}(config):\n        return\n" for m in methods)
    return f"class VerifyAndUpdateConfig:\n{body}\nMODELS_CONFIG_MAP = {{}}\n"


def test_it_applies_where_the_pins_base_has_no_model_hook(tmp_path):
    def gap(*methods: str) -> str | None:
        root = write(
            tmp_path / "-".join(methods or ("none",)),
            {
                "vllm/__init__.py": "",
                "vllm/model_executor/__init__.py": "",
                "vllm/model_executor/models/__init__.py": "",
                "vllm/model_executor/models/config.py": base(*methods),
            },
        )
        return p30.pin_gap(Resolver([index_directory(root, "vllm", "0.13.0")]))

    assert gap("verify_and_update_config") is None
    assert gap("verify_and_update_config", "verify_and_update_model_config") == (
        "the pin's vllm.model_executor.models.config.VerifyAndUpdateConfig has verify_and_update_model_config"
    )


def load_shim():
    spec = importlib.util.spec_from_file_location("config_hook", SHIMS / "config_hook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shims_base_runs_the_model_hook_from_the_one_the_pin_calls():
    """Upstream calls a hook's model hook, then its engine hook; the pin calls the engine hook only.
    On the shim's base each class's engine hook runs its own model hook first, once."""
    Base = load_shim().VerifyAndUpdateConfig
    calls: list[str] = []

    class ModelOnly(Base):
        @staticmethod
        def verify_and_update_model_config(model_config):
            calls.append("model")
            model_config.is_causal = False

    class EngineOnly(Base):
        @classmethod
        def verify_and_update_config(cls, vllm_config):
            calls.append(f"engine {cls.__name__}")

    class InheritsTheEngineHook(EngineOnly):
        @staticmethod
        def verify_and_update_model_config(model_config):
            calls.append("child model")

    class CallsSuper(EngineOnly):
        @classmethod
        def verify_and_update_config(cls, vllm_config):
            super().verify_and_update_config(vllm_config)
            calls.append("own engine")

        @staticmethod
        def verify_and_update_model_config(model_config):
            calls.append("own model")

    def run(hook) -> SimpleNamespace:
        calls.clear()
        vllm_config = SimpleNamespace(model_config=SimpleNamespace())
        hook.verify_and_update_config(vllm_config)
        return vllm_config.model_config

    assert run(ModelOnly).is_causal is False and calls == ["model"]
    run(EngineOnly)
    assert calls == ["engine EngineOnly"]
    run(InheritsTheEngineHook)
    assert calls == ["child model", "engine InheritsTheEngineHook"]
    run(CallsSuper)
    assert calls == ["own model", "engine CallsSuper", "own engine"]
    run(Base)
    assert calls == []
