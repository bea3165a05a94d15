"""What a model's re-migration no longer needs (steps/stale.py): files and compat names nothing
else of the plugin imports."""

from __future__ import annotations

from types import SimpleNamespace

from pytest_flmigrate.manifest import Manifest
from pytest_flmigrate.steps import migrate, stale
from tests.fixtures.trees import write

UTILS = "vllm_fl/compat/model_executor/models/utils.py"
OPS = "vllm_fl/compat/model_executor/layers/ops.py"
INIT = """
def register_model():
    from vllm import ModelRegistry

    # Register mine model
    try:
        from vllm_fl.configs.mine import MineConfig
        ModelRegistry.register_model("MineForCausalLM", "vllm_fl.models.mine:MineForCausalLM")
    except Exception:
        pass

    # Register other model
    try:
        ModelRegistry.register_model("OtherForCausalLM", "vllm_fl.models.other:OtherForCausalLM")
        from vllm_fl.configs.shared import SharedConfig
    except Exception:
        pass
"""


def plugin_with(tmp_path, files: dict[str, tuple[str, dict]], handmade: dict[str, str]) -> Manifest:
    """A plugin whose manifest records ``files`` (target -> (text, details)) as written as they are."""
    root = write(tmp_path / "plugin", {"vllm_fl/__init__.py": INIT, **handmade})
    manifest = Manifest(root)
    for target, (text, details) in files.items():
        write(root, {target: text})
        manifest.record(target, text, text, details)
    return manifest


def test_stale_files_are_the_models_and_compat_ones_nothing_else_imports(tmp_path):
    mine = {"model": "mine", "role": "model"}
    compat = {"model": None, "role": "compat"}
    manifest = plugin_with(
        tmp_path,
        {
            "vllm_fl/models/mine.py": ("from vllm_fl.compat.model_executor.models.utils import a\n", mine),
            "vllm_fl/models/mine_vision.py": ("X = 1\n", {"model": "mine", "role": "sibling"}),
            "vllm_fl/configs/mine.py": ("class MineConfig: ...\n", {"model": "mine", "role": "config"}),
            "vllm_fl/configs/shared.py": ("class SharedConfig: ...\n", {"model": "mine", "role": "config"}),
            "vllm_fl/models/other.py": ("from vllm_fl.models.mine_vision import X\n", {"model": "other"}),
            UTILS: ("from vllm_fl.compat.model_executor.layers.ops import op\ndef a(): ...\n", compat),
            OPS: ("def op(): ...\n", compat),
        },
        {"vllm_fl/models/handmade.py": "import torch\n"},
    )
    # the new plan writes the model file only, importing nothing of the plugin
    written = {"vllm_fl/models/mine.py": "import torch\n"}
    dropped = stale.stale_files(manifest, "mine", written, ("MineForCausalLM",))
    # the sibling another model imports stays, and so does the config another model's block imports;
    # the model's own config (imported by its own block only) and the compat chain go
    assert dropped == ["vllm_fl/configs/mine.py", UTILS, OPS]
    # while the new text still imports the compat module, it and what it imports are live
    written = {"vllm_fl/models/mine.py": "from vllm_fl.compat.model_executor.models.utils import a\n"}
    assert stale.stale_files(manifest, "mine", written, ("MineForCausalLM",)) == ["vllm_fl/configs/mine.py"]


def test_a_compat_module_keeps_what_the_rest_of_the_plugin_imports_from_it(tmp_path):
    imports = "from vllm_fl.compat.model_executor.models.utils import {}\n".format
    manifest = plugin_with(
        tmp_path,
        {
            UTILS: ("def a(): ...\ndef b(): ...\ndef c(): ...\ndef d(): ...\n", {"model": None, "role": "compat"}),
            "vllm_fl/models/other.py": (imports("a"), {"model": "other", "role": "model"}),
            "vllm_fl/models/mine.py": (imports("b"), {"model": "mine", "role": "model"}),
        },
        {"vllm_fl/models/handmade.py": imports("d")},
    )
    mine = manifest.plugin_dir / "vllm_fl/models/mine.py"
    mine.write_text(imports("b") + imports("c"))  # a hand edit imports c too
    assert stale.used_compat_names(manifest, "mine", ()) == {
        "vllm_fl.compat.model_executor.models.utils": {"a", "c", "d"}
    }


def test_a_rewritten_compat_module_keeps_what_a_compat_module_left_as_it_is_imports(tmp_path):
    """Another model's migration wrote interfaces.py, importing ``b`` from utils.py; this one
    rewrites utils.py only: ``b`` stays."""
    interfaces = "vllm_fl/compat/model_executor/models/interfaces.py"
    compat = {"model": None, "role": "compat"}
    manifest = plugin_with(
        tmp_path,
        {
            UTILS: ("def a(): ...\ndef b(): ...\n", compat),
            interfaces: ("from vllm_fl.compat.model_executor.models.utils import b\nclass Mixin: ...\n", compat),
            "vllm_fl/models/other.py": (
                "from vllm_fl.compat.model_executor.models.interfaces import Mixin\n",
                {"model": "other", "role": "model"},
            ),
        },
        {},
    )
    used = stale.used_compat_names(manifest, "mine", (), rewritten=[UTILS])
    assert used["vllm_fl.compat.model_executor.models.utils"] == {"b"}
    # when the migration rewrites interfaces.py too, its own plan says what interfaces.py needs
    assert "vllm_fl.compat.model_executor.models.utils" not in stale.used_compat_names(
        manifest, "mine", (), rewritten=[UTILS, interfaces]
    )


def test_a_planned_compat_module_nothing_imports_once_patched_is_not_written(tmp_path):
    rope = "vllm_fl/compat/transformers/modeling_rope_utils.py"
    manifest = plugin_with(tmp_path, {}, {})
    written = {
        "vllm_fl/configs/mine.py": "from vllm_fl.compat.model_executor.models.utils import a\n",
        UTILS: "from vllm_fl.compat.model_executor.layers.ops import op\ndef a(): ...\n",
        OPS: "def op(): ...\n",
        rope: "class RopeParameters: ...\n",  # its only use was patched away
    }
    assert stale.unimported_compat(manifest, "mine", written, [UTILS, OPS, rope], ()) == {rope}


def test_a_compat_module_nothing_imports_once_patched_leaves_the_plan_the_smoke_and_review_read(tmp_path):
    """The plan step 4 writes is the one the import smoke imports and step 6 reviews: a compat module
    left unwritten is in none of them (else the smoke fails on a module that was never written)."""
    rope = "vllm_fl/compat/transformers/modeling_rope_utils.py"
    plugin = plugin_with(tmp_path, {}, {}).plugin_dir

    def planned(target: str, role: str) -> migrate.PlannedFile:
        return migrate.PlannedFile(target, tmp_path / target, target.removesuffix(".py").replace("/", "."), False, role)

    files = [planned("vllm_fl/configs/mine.py", "config"), planned(UTILS, "compat"), planned(rope, "compat")]
    plan = migrate.MigrationPlan(SimpleNamespace(name="mine", architectures=()), files, {}, {}, None, "")
    texts = {
        "vllm_fl/configs/mine.py": ("from vllm_fl.compat.model_executor.models.utils import a\n", {}),
        UTILS: ("def a(): ...\n", {}),
        rope: ("class RopeParameters: ...\n", {}),
    }
    kept = migrate.without_unimported_compat(plan, texts, plugin, ())
    assert [f.target for f in kept.files] == ["vllm_fl/configs/mine.py", UTILS]
    assert migrate.without_unimported_compat(kept, texts, plugin, ()) is kept
