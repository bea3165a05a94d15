"""Step 5: editing register_model() in vllm_fl/__init__.py (pytest_flmigrate.steps.register)."""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.steps.register import (
    Registration,
    RegistrationResult,
    plan_registration,
)
from pytest_flmigrate.steps.registrations import registered_configs, registered_entries, registration_mismatches

# --------------------------------------------------------------------------- inputs

# A fresh plugin: register_model() is a placeholder; no logger, no logging import.
PASS_INIT = '''\
# Copyright (c) 2025 BAAI. All rights reserved.


def register():
    """Register the FL platform."""
    return "vllm_fl.platform.PlatformFL"


def register_model():
    """Register the FL models."""
    pass
'''

# The 0.13-era shape: a module logger, ModelRegistry imported at the top of register_model(),
# one commented try/except per model, a config-only block, a call split over lines, comments.
PLUGIN_INIT = '''\
# Copyright (c) 2025 BAAI. All rights reserved.

import logging
import os

logger = logging.getLogger(__name__)


def register():
    """Register the FL platform."""
    if os.environ.get("VLLM_WORKER_MULTIPROC_METHOD") is None:
        os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "spawn"
    return "vllm_fl.platform.PlatformFL"


def register_model():
    """Register the FL models."""
    from vllm import ModelRegistry

    # Register the Qwen3.5 MoE config (the pin's transformers lacks it)
    try:
        from vllm.transformers_utils.config import _CONFIG_REGISTRY
        from vllm_fl.configs.qwen3_5_moe import Qwen3_5MoeConfig
        _CONFIG_REGISTRY["qwen3_5_moe"] = Qwen3_5MoeConfig
    except Exception as e:
        logger.error(f"Register Qwen3.5 MoE config error: {str(e)}")

    # Register Kimi-K2.5 model
    try:
        ModelRegistry.register_model(
            "KimiK25ForConditionalGeneration",
            "vllm_fl.models.kimi_k25:KimiK25ForConditionalGeneration",
        )
    except Exception as e:
        logger.error(f"Register KimiK25 model error: {str(e)}")  # keep going

    # Register MiniCPM-o model
    try:
        ModelRegistry.register_model("MiniCPMO", "vllm_fl.models.minicpmo:MiniCPMO")
    except Exception as e:
        logger.error(f"Register MiniCPMO model error: {str(e)}")
    # (new models go above this line)


def _unrelated_helper():
    return ModelRegistry  # noqa: F821 - never called
'''

# ModelRegistry and logging imported at module level, no `logger`.
TOPLEVEL_INIT = """\
import logging

from vllm import ModelRegistry


def register_model():
    try:
        ModelRegistry.register_model(
            model_arch="MiniCPMO",
            model_cls="vllm_fl.models.minicpmo:MiniCPMO",
        )
    except Exception as e:
        logging.getLogger(__name__).warning("MiniCPMO: %s", e)
"""

QWEN3_5 = Registration(
    model_name="qwen3_5",
    plugin_module="vllm_fl.models.qwen3_5",
    architectures=(("Qwen3_5ForConditionalGeneration", "Qwen3_5ForConditionalGeneration"),),
    config=("qwen3_5", "Qwen3_5Config", "vllm_fl.configs.qwen3_5"),
)
QWEN3_5_MULTI = Registration(
    model_name="qwen3_5",
    plugin_module="vllm_fl.models.qwen3_5",
    architectures=(
        ("Qwen3_5ForConditionalGeneration", "Qwen3_5ForConditionalGeneration"),
        ("Qwen3_5ForCausalLM", "Qwen3_5ForCausalLM"),
        ("Qwen3_5MTP", "Qwen3_5MTP"),
    ),
    config=("qwen3_5", "Qwen3_5Config", "vllm_fl.configs.qwen3_5"),
)
GEMMA_TEXT_ONLY = Registration(
    model_name="gemma3n_text",
    plugin_module="vllm_fl.models.gemma3n_text",
    architectures=(("Gemma3nForCausalLM", "Gemma3nForCausalLM"),),
    config=None,
)
QWEN3_NEXT = Registration(
    model_name="qwen3_next",
    plugin_module="vllm_fl.models.qwen3_next",
    architectures=(("Qwen3NextForCausalLM", "Qwen3NextForCausalLM"),),
    config=None,
    overrides=(("vllm.model_executor.models.qwen3_next", "Qwen3NextForCausalLM"),),
)

ALL_INITS = {"pass": PASS_INIT, "plugin": PLUGIN_INIT, "toplevel": TOPLEVEL_INIT}
ALL_REGISTRATIONS = {
    "config+arch": QWEN3_5,
    "multi-arch": QWEN3_5_MULTI,
    "text-only": GEMMA_TEXT_ONLY,
    "override": QWEN3_NEXT,
}


# --------------------------------------------------------------------------- helpers


def inserted_only(old: str, new: str) -> list[str]:
    """The lines ``new`` adds to ``old``; fails when any line of ``old`` was changed or removed."""
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    added: list[str] = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        assert op in ("equal", "insert"), (op, old_lines[a0:a1], new_lines[b0:b1])
        if op == "insert":
            added += new_lines[b0:b1]
    return added


def valid_python(source: str) -> None:
    compile(source, "vllm_fl/__init__.py", "exec")


FAKE_VLLM = {
    "vllm/__init__.py": '''\
        class _RecordingModelRegistry:
            """Stands in for vllm.ModelRegistry: records every registration in order."""

            def __init__(self):
                self.calls = []

            def register_model(self, model_arch, model_cls):
                if not isinstance(model_cls, str):
                    model_cls = f"{model_cls.__module__}:{model_cls.__qualname__}"
                self.calls.append([model_arch, model_cls])


        ModelRegistry = _RecordingModelRegistry()
        ''',
    "vllm/transformers_utils/__init__.py": "",
    "vllm/transformers_utils/config.py": "_CONFIG_REGISTRY = {}\n",
    "vllm/model_executor/__init__.py": "",
    "vllm/model_executor/models/__init__.py": "from vllm import ModelRegistry\n",
    "vllm/model_executor/models/qwen3_next.py": "class Qwen3NextForCausalLM:\n    pass\n",
}

DRIVER = """\
import importlib, json, logging, sys

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
overrides = json.loads(sys.argv[1])
import vllm
import vllm_fl

vllm_fl.register_model()
from vllm.transformers_utils.config import _CONFIG_REGISTRY

resolved = {}
for arch, target in vllm.ModelRegistry.calls:
    module, _, cls = target.partition(":")
    resolved[arch] = getattr(importlib.import_module(module), cls).__module__
print(json.dumps({
    "calls": vllm.ModelRegistry.calls,
    "configs": {k: f"{v.__module__}:{v.__qualname__}" for k, v in _CONFIG_REGISTRY.items()},
    "resolved": resolved,
    "overrides": {
        f"{m}.{c}": getattr(importlib.import_module(m), c).__module__ for m, c in overrides
    },
}))
"""


def run_register_model(
    tmp_path: Path,
    init_source: str,
    plugin_classes: dict[str, list[str]],
    overrides: list[tuple[str, str]] = (),
) -> tuple[dict, str]:
    """Write a fake vllm + vllm_fl tree, call vllm_fl.register_model() in a fresh interpreter."""
    files = dict(FAKE_VLLM)
    files["vllm_fl/__init__.py"] = init_source
    for module, classes in plugin_classes.items():
        parts = module.split(".")
        for i in range(1, len(parts)):
            files.setdefault("/".join(parts[:i]) + "/__init__.py", "")
        files["/".join(parts) + ".py"] = "".join(f"class {c}:\n    pass\n\n" for c in classes)
    for rel, text in files.items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text if rel == "vllm_fl/__init__.py" else textwrap.dedent(text))
    (tmp_path / "driver.py").write_text(DRIVER)
    proc = subprocess.run(
        [sys.executable, "driver.py", json.dumps(list(overrides))],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


# --------------------------------------------------------------------------- adding


def test_text_only_into_pass_body_golden():
    result = plan_registration(PASS_INIT, GEMMA_TEXT_ONLY)
    assert result == RegistrationResult(
        changed=True,
        source=PASS_INIT.replace(
            '    """Register the FL models."""\n    pass\n',
            '''\
    """Register the FL models."""

    # Register gemma3n_text model
    try:
        from vllm import ModelRegistry
        ModelRegistry.register_model(
            "Gemma3nForCausalLM",
            "vllm_fl.models.gemma3n_text:Gemma3nForCausalLM",
        )
    except Exception as e:
        import logging
        logging.getLogger(__name__).warning("Register gemma3n_text model error: %s", e)
''',
        ),
        added=("arch Gemma3nForCausalLM",),
    )
    valid_python(result.source)


def test_config_and_arch_appended_after_existing_blocks():
    result = plan_registration(PLUGIN_INIT, QWEN3_5)
    added = inserted_only(PLUGIN_INIT, result.source)
    assert "".join(added) == (
        "\n"
        "    # Register qwen3_5 model\n"
        "    try:\n"
        "        from vllm.transformers_utils.config import _CONFIG_REGISTRY\n"
        "        from vllm_fl.configs.qwen3_5 import Qwen3_5Config\n"
        '        _CONFIG_REGISTRY["qwen3_5"] = Qwen3_5Config\n'
        "        ModelRegistry.register_model(\n"
        '            "Qwen3_5ForConditionalGeneration",\n'
        '            "vllm_fl.models.qwen3_5:Qwen3_5ForConditionalGeneration",\n'
        "        )\n"
        "    except Exception as e:\n"
        '        logger.error("Register qwen3_5 model error: %s", e)\n'
    )
    # The new block goes after the last block and before the function's trailing comment; it logs
    # at the level the other blocks do.
    assert result.source.index("Register qwen3_5 model") > result.source.index("Register MiniCPMO model error")
    assert result.source.index("Register qwen3_5 model") < result.source.index("new models go above")
    assert result.added == ("config qwen3_5 -> Qwen3_5Config", "arch Qwen3_5ForConditionalGeneration")
    valid_python(result.source)


VOYAGE = Registration(
    model_name="voyage",
    plugin_module="vllm_fl.models.voyage",
    architectures=(("VoyageQwen3BidirectionalEmbedModel", "VoyageQwen3BidirectionalEmbedModel"),),
    config=None,
    hooks=(
        (
            "VoyageQwen3BidirectionalEmbedModel",
            "VoyageQwen3BidirectionalEmbedModelConfig",
            "vllm_fl.compat.model_executor.models.config",
        ),
    ),
)


def test_a_config_hook_is_registered_in_the_pins_table_before_the_architecture():
    result = plan_registration(PLUGIN_INIT, VOYAGE)
    added = "".join(inserted_only(PLUGIN_INIT, result.source))
    assert (
        "        from vllm.model_executor.models.config import MODELS_CONFIG_MAP\n"
        "        from vllm_fl.compat.model_executor.models.config import VoyageQwen3BidirectionalEmbedModelConfig\n"
        '        MODELS_CONFIG_MAP["VoyageQwen3BidirectionalEmbedModel"] = VoyageQwen3BidirectionalEmbedModelConfig\n'
        "        ModelRegistry.register_model(\n"
    ) in added
    assert result.added == (
        "config hook VoyageQwen3BidirectionalEmbedModel -> VoyageQwen3BidirectionalEmbedModelConfig",
        "arch VoyageQwen3BidirectionalEmbedModel",
    )
    valid_python(result.source)
    assert plan_registration(result.source, VOYAGE) == RegistrationResult(False, result.source, (), result.shape)
    # a block registering the architecture already gets the hook added to it
    without = Registration(VOYAGE.model_name, VOYAGE.plugin_module, VOYAGE.architectures, None)
    first = plan_registration(PLUGIN_INIT, without).source
    completed = plan_registration(first, VOYAGE)
    assert completed.added == (result.added[0],) and completed.source.count("try:") == first.count("try:")
    assert 'MODELS_CONFIG_MAP["VoyageQwen3BidirectionalEmbedModel"]' in completed.source


def test_a_config_hook_registered_to_another_class_is_a_conflict():
    source = plan_registration(PLUGIN_INIT, VOYAGE).source.replace(
        "= VoyageQwen3BidirectionalEmbedModelConfig\n", "= OtherHook\n"
    )
    with pytest.raises(FlmigrateError, match="the config hook of VoyageQwen3BidirectionalEmbedModel is OtherHook"):
        plan_registration(source, VOYAGE)


def test_multi_arch_registers_every_class_in_one_block():
    result = plan_registration(PLUGIN_INIT, QWEN3_5_MULTI)
    added = "".join(inserted_only(PLUGIN_INIT, result.source))
    assert added.count("try:") == 1 and added.count("except Exception as e:") == 1
    assert added.count("ModelRegistry.register_model(") == 3
    assert result.added == (
        "config qwen3_5 -> Qwen3_5Config",
        "arch Qwen3_5ForConditionalGeneration",
        "arch Qwen3_5ForCausalLM",
        "arch Qwen3_5MTP",
    )
    assert registered_entries(result.source) == {
        "KimiK25ForConditionalGeneration": "vllm_fl.models.kimi_k25:KimiK25ForConditionalGeneration",
        "MiniCPMO": "vllm_fl.models.minicpmo:MiniCPMO",
        "Qwen3_5ForConditionalGeneration": "vllm_fl.models.qwen3_5:Qwen3_5ForConditionalGeneration",
        "Qwen3_5ForCausalLM": "vllm_fl.models.qwen3_5:Qwen3_5ForCausalLM",
        "Qwen3_5MTP": "vllm_fl.models.qwen3_5:Qwen3_5MTP",
    }


def test_override_assigns_plugin_class_into_in_tree_module_before_registering():
    result = plan_registration(PLUGIN_INIT, QWEN3_NEXT)
    added = [line.strip() for line in inserted_only(PLUGIN_INIT, result.source)]
    assert added[added.index("try:") + 1 :][:4] == [
        "import vllm.model_executor.models.qwen3_next as qwen3_next_module",
        "from vllm_fl.models.qwen3_next import Qwen3NextForCausalLM",
        "qwen3_next_module.Qwen3NextForCausalLM = Qwen3NextForCausalLM",
        "ModelRegistry.register_model(",
    ]
    assert result.added == (
        "override vllm.model_executor.models.qwen3_next.Qwen3NextForCausalLM",
        "arch Qwen3NextForCausalLM",
    )
    valid_python(result.source)


def test_module_level_imports_are_reused_not_shadowed():
    result = plan_registration(TOPLEVEL_INIT, QWEN3_5)
    added = "".join(inserted_only(TOPLEVEL_INIT, result.source))
    # ModelRegistry and logging come from the module: importing them inside the function would
    # make them local names of all of register_model().
    assert "import ModelRegistry" not in added
    assert "import logging" not in added
    assert 'logging.getLogger(__name__).warning("Register qwen3_5 model error: %s", e)' in added
    valid_python(result.source)


def test_block_goes_before_a_trailing_return():
    source = textwrap.dedent("""\
        def register_model():
            from vllm import ModelRegistry
            ModelRegistry.register_model("MiniCPMO", "vllm_fl.models.minicpmo:MiniCPMO")
            return None
    """)
    result = plan_registration(source, GEMMA_TEXT_ONLY)
    inserted_only(source, result.source)
    assert result.source.rstrip().endswith("    return None")
    assert result.source.index("Gemma3nForCausalLM") < result.source.index("return None")


def test_one_line_register_model_becomes_a_block():
    source = "def register_model(): pass  # filled in by step 5\n"
    result = plan_registration(source, GEMMA_TEXT_ONLY)
    assert result.source.startswith("def register_model():  # filled in by step 5\n    # Register")
    assert "pass" not in result.source
    valid_python(result.source)
    assert registered_entries(result.source) == {"Gemma3nForCausalLM": "vllm_fl.models.gemma3n_text:Gemma3nForCausalLM"}


def test_commented_pass_is_kept():
    source = "def register_model():\n    pass  # TODO: models\n"
    result = plan_registration(source, GEMMA_TEXT_ONLY)
    assert result.source.startswith(source)


def test_crlf_file_stays_crlf():
    source = PLUGIN_INIT.replace("\n", "\r\n")
    result = plan_registration(source, QWEN3_5)
    assert "\n" not in result.source.replace("\r\n", "")
    assert plan_registration(result.source, QWEN3_5).changed is False


def test_tab_indented_file_stays_tab_indented():
    source = "def register_model():\n\tfrom vllm import ModelRegistry\n"
    result = plan_registration(source, QWEN3_5)
    body = result.source.splitlines()[1:]
    assert all(line == "" or line.startswith("\t") for line in body)
    assert not any(line.startswith(" ") for line in body)
    valid_python(result.source)


# --------------------------------------------------------------------------- idempotence


@pytest.mark.parametrize("reg_id", ALL_REGISTRATIONS)
@pytest.mark.parametrize("init_id", ALL_INITS)
def test_rerun_adds_nothing_and_is_byte_identical(init_id, reg_id):
    registration = ALL_REGISTRATIONS[reg_id]
    first = plan_registration(ALL_INITS[init_id], registration)
    assert first.changed and first.added
    valid_python(first.source)
    second = plan_registration(first.source, registration)
    assert second == RegistrationResult(changed=False, source=first.source, added=())
    assert second.source is first.source


def test_several_models_in_a_row_each_get_one_block():
    source = PASS_INIT
    for registration in (QWEN3_5, GEMMA_TEXT_ONLY, QWEN3_NEXT):
        source = plan_registration(source, registration).source
    for registration in (QWEN3_5, GEMMA_TEXT_ONLY, QWEN3_NEXT):
        assert plan_registration(source, registration).source is source
    assert source.count("try:") == 3
    assert source.count("from vllm import ModelRegistry") == 3  # each block stands alone


def test_hand_written_registration_counts_as_present():
    # The plugin's existing MiniCPMO registration, one line, in a block without our marker.
    registration = Registration(
        model_name="minicpmo",
        plugin_module="vllm_fl.models.minicpmo",
        architectures=(("MiniCPMO", "MiniCPMO"),),
        config=None,
    )
    result = plan_registration(PLUGIN_INIT, registration)
    assert result.changed is False and result.source is PLUGIN_INIT


def test_missing_config_joins_the_block_registering_from_the_plugin_module():
    registration = Registration(
        model_name="minicpmo",
        plugin_module="vllm_fl.models.minicpmo",
        architectures=(("MiniCPMO", "MiniCPMO"),),
        config=("minicpmo", "MiniCPMOConfig", "vllm_fl.configs.minicpmo"),
    )
    result = plan_registration(PLUGIN_INIT, registration)
    assert result.added == ("config minicpmo -> MiniCPMOConfig",)
    inserted_only(PLUGIN_INIT, result.source)
    block = result.source.split("# Register MiniCPM-o model")[1].split("except")[0]
    assert block.index('_CONFIG_REGISTRY["minicpmo"]') < block.index("register_model(")
    assert result.source.count("try:") == PLUGIN_INIT.count("try:")


def test_keyword_registration_counts_as_present():
    registration = Registration("minicpmo", "vllm_fl.models.minicpmo", (("MiniCPMO", "MiniCPMO"),), None)
    assert plan_registration(TOPLEVEL_INIT, registration).source is TOPLEVEL_INIT


def test_config_registered_in_its_own_block_is_not_repeated():
    # Like the plugin's qwen3_5_moe: config in one try block, arch to be added.
    registration = Registration(
        model_name="qwen3_5_moe",
        plugin_module="vllm_fl.models.qwen3_5",
        architectures=(("Qwen3_5MoeForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration"),),
        config=("qwen3_5_moe", "Qwen3_5MoeConfig", "vllm_fl.configs.qwen3_5_moe"),
    )
    result = plan_registration(PLUGIN_INIT, registration)
    assert result.added == ("arch Qwen3_5MoeForConditionalGeneration",)
    assert result.source.count('_CONFIG_REGISTRY["qwen3_5_moe"]') == 1
    # it goes into the block that already handles this model's config module
    block = result.source.split("# Register the Qwen3.5 MoE config")[1].split("# Register Kimi")[0]
    assert "Qwen3_5MoeForConditionalGeneration" in block
    assert block.index("_CONFIG_REGISTRY[") < block.index("ModelRegistry.register_model(")


# --------------------------------------------------------------------------- partial blocks

PARTIAL_CONFIG_ONLY = textwrap.dedent("""\
    import logging

    logger = logging.getLogger(__name__)


    def register_model():
        # Register qwen3_5 model
        try:
            from vllm.transformers_utils.config import _CONFIG_REGISTRY
            from vllm_fl.configs.qwen3_5 import Qwen3_5Config
            _CONFIG_REGISTRY["qwen3_5"] = Qwen3_5Config
        except Exception as e:
            logger.warning("Register qwen3_5 model error: %s", e)

        # Register qwen3_5_moe model
        try:
            pass
        except Exception as e:
            logger.warning("Register qwen3_5_moe model error: %s", e)
""")


def test_partial_block_gets_the_missing_architecture_inside_it():
    result = plan_registration(PARTIAL_CONFIG_ONLY, QWEN3_5)
    added = [line.strip() for line in inserted_only(PARTIAL_CONFIG_ONLY, result.source)]
    assert added == [
        "from vllm import ModelRegistry",
        "ModelRegistry.register_model(",
        '"Qwen3_5ForConditionalGeneration",',
        '"vllm_fl.models.qwen3_5:Qwen3_5ForConditionalGeneration",',
        ")",
    ]
    assert result.source.count("try:") == 2
    qwen_block = result.source.split("# Register qwen3_5 model")[1].split("except")[0]
    assert "ModelRegistry.register_model(" in qwen_block
    assert '            "Qwen3_5ForConditionalGeneration",' in qwen_block  # continuation indent
    assert result.added == ("arch Qwen3_5ForConditionalGeneration",)
    valid_python(result.source)


def test_partial_block_gets_the_missing_config_at_its_top():
    source = textwrap.dedent("""\
        def register_model():
            from vllm import ModelRegistry

            # Register qwen3_5 model
            try:
                ModelRegistry.register_model(
                    "Qwen3_5ForConditionalGeneration",
                    "vllm_fl.models.qwen3_5:Qwen3_5ForConditionalGeneration",
                )
            except Exception as e:
                import logging
                logging.getLogger(__name__).warning("Register qwen3_5 model error: %s", e)
    """)
    result = plan_registration(source, QWEN3_5_MULTI)
    added = [line.strip() for line in inserted_only(source, result.source)]
    assert added[:3] == [
        "from vllm.transformers_utils.config import _CONFIG_REGISTRY",
        "from vllm_fl.configs.qwen3_5 import Qwen3_5Config",
        '_CONFIG_REGISTRY["qwen3_5"] = Qwen3_5Config',
    ]
    assert "from vllm import ModelRegistry" not in added  # the function imports it
    assert result.source.count("try:") == 1
    assert result.source.index("_CONFIG_REGISTRY[") < result.source.index("register_model(\n")
    assert result.added == (
        "config qwen3_5 -> Qwen3_5Config",
        "arch Qwen3_5ForCausalLM",
        "arch Qwen3_5MTP",
    )
    assert plan_registration(result.source, QWEN3_5_MULTI).changed is False


def test_partial_block_found_by_content_gets_the_override_before_its_registration():
    # No marker comment: the block is recognised by the plugin module it registers from.
    source = textwrap.dedent("""\
        import logging

        logger = logging.getLogger(__name__)


        def register_model():
            from vllm import ModelRegistry

            try:
                ModelRegistry.register_model(
                    "Qwen3NextForCausalLM",
                    "vllm_fl.models.qwen3_next:Qwen3NextForCausalLM",
                )
            except Exception as e:
                logger.error(f"Register Qwen3Next model error: {str(e)}")
    """)
    result = plan_registration(source, QWEN3_NEXT)
    added = [line.strip() for line in inserted_only(source, result.source)]
    assert added == [
        "import vllm.model_executor.models.qwen3_next as qwen3_next_module",
        "from vllm_fl.models.qwen3_next import Qwen3NextForCausalLM",
        "qwen3_next_module.Qwen3NextForCausalLM = Qwen3NextForCausalLM",
    ]
    assert result.source.index("qwen3_next_module.Qwen3NextForCausalLM =") < result.source.index(
        "ModelRegistry.register_model("
    )
    assert result.added == ("override vllm.model_executor.models.qwen3_next.Qwen3NextForCausalLM",)


def test_override_with_module_imported_at_function_top_is_present():
    # The plugin's own spelling: the in-tree module imported once at the top of register_model().
    source = textwrap.dedent("""\
        def register_model():
            from vllm import ModelRegistry
            import vllm.model_executor.models.qwen3_next as qwen3_next_module

            try:
                from vllm_fl.models.qwen3_next import Qwen3NextForCausalLM

                qwen3_next_module.Qwen3NextForCausalLM = Qwen3NextForCausalLM
                ModelRegistry.register_model(
                    "Qwen3NextForCausalLM", "vllm_fl.models.qwen3_next:Qwen3NextForCausalLM"
                )
            except Exception as e:
                print(e)
    """)
    assert plan_registration(source, QWEN3_NEXT).source is source


# --------------------------------------------------------------------------- errors


def one_line(error: FlmigrateError) -> str:
    assert "\n" not in error.message
    return error.message


def test_conflicting_architecture_names_both_targets():
    source = PLUGIN_INIT.replace(
        '"vllm_fl.models.minicpmo:MiniCPMO"', '"vllm_fl.models.qwen3_5_old:Qwen35Legacy"'
    ).replace('"MiniCPMO", ', '"Qwen3_5ForConditionalGeneration", ')
    with pytest.raises(FlmigrateError) as info:
        plan_registration(source, QWEN3_5)
    message = one_line(info.value)
    assert "Qwen3_5ForConditionalGeneration" in message
    assert "vllm_fl.models.qwen3_5_old:Qwen35Legacy" in message
    assert "vllm_fl.models.qwen3_5:Qwen3_5ForConditionalGeneration" in message
    line = source[: source.index("Qwen35Legacy")].count("\n") + 1
    assert f"vllm_fl/__init__.py:{line}" in message


def test_every_conflict_is_reported_first_in_the_message_rest_in_detail():
    source = PARTIAL_CONFIG_ONLY.replace(
        "        pass\n",
        '        ModelRegistry.register_model("Qwen3_5ForCausalLM", "vllm_fl.models.a:A")\n'
        '        ModelRegistry.register_model("Qwen3_5MTP", "vllm_fl.models.b:B")\n',
    )
    with pytest.raises(FlmigrateError) as info:
        plan_registration(source, QWEN3_5_MULTI)
    assert "vllm_fl.models.a:A" in one_line(info.value)
    assert "vllm_fl.models.b:B" in info.value.detail


def test_conflicting_class_object_target_is_resolved_through_imports():
    source = textwrap.dedent("""\
        def register_model():
            from vllm import ModelRegistry
            try:
                from vllm_fl.models.gemma_hack import Gemma3nForCausalLM as G
                ModelRegistry.register_model("Gemma3nForCausalLM", G)
            except Exception:
                pass
    """)
    assert registered_entries(source) == {"Gemma3nForCausalLM": "vllm_fl.models.gemma_hack:Gemma3nForCausalLM"}
    with pytest.raises(FlmigrateError, match="vllm_fl.models.gemma_hack:Gemma3nForCausalLM"):
        plan_registration(source, GEMMA_TEXT_ONLY)


def test_conflicting_config_names_both_classes():
    source = PARTIAL_CONFIG_ONLY.replace(
        "vllm_fl.configs.qwen3_5 import Qwen3_5Config", "vllm_fl.configs.qwen3_6 import Qwen3_6Config"
    ).replace("= Qwen3_5Config", "= Qwen3_6Config")
    with pytest.raises(FlmigrateError) as info:
        plan_registration(source, QWEN3_5)
    message = one_line(info.value)
    assert "vllm_fl.configs.qwen3_6:Qwen3_6Config" in message
    assert "vllm_fl.configs.qwen3_5:Qwen3_5Config" in message


def test_conflicting_override_names_both_classes():
    source = textwrap.dedent("""\
        def register_model():
            import vllm.model_executor.models.qwen3_next as q
            from vllm_fl.models.other import Qwen3NextForCausalLM
            q.Qwen3NextForCausalLM = Qwen3NextForCausalLM
    """)
    with pytest.raises(FlmigrateError, match="vllm_fl.models.other:Qwen3NextForCausalLM"):
        plan_registration(source, QWEN3_NEXT)


def test_missing_register_model():
    source = PASS_INIT.replace("def register_model():", "def register_models():")
    with pytest.raises(FlmigrateError) as info:
        plan_registration(source, QWEN3_5)
    assert one_line(info.value).startswith("vllm_fl/__init__.py has no register_model(): add ")
    with pytest.raises(FlmigrateError, match="has no register_model"):
        registered_entries(source)


@pytest.mark.parametrize(
    "source",
    [
        "class Plugin:\n    def register_model(self):\n        pass\n",
        "async def register_model():\n    pass\n",
        "if True:\n    def register_model():\n        pass\n",
    ],
    ids=["method", "async", "nested"],
)
def test_register_model_must_be_a_module_level_function(source):
    with pytest.raises(FlmigrateError, match="has no register_model"):
        plan_registration(source, QWEN3_5, path="plugin/vllm_fl/__init__.py")


@pytest.mark.parametrize(
    ("source", "where"),
    [
        (
            'from vllm import ModelRegistry\nModelRegistry.register_model("A", "vllm_fl.models.a:A")\n'
            "def register_model():\n    pass\n",
            "2: this plugin registers models at import time (module level)",
        ),
        (
            "def register_model():\n    from vllm import ModelRegistry\n    for arch, target in TABLE:\n"
            "        ModelRegistry.register_model(arch, target)\n",
            "4: this plugin registers models in register_model() with an architecture or model_type that is not "
            "a string literal",
        ),
        (
            "def register_model():\n    def one(arch):\n        ModelRegistry.register_model(arch, 'm:C')\n"
            "    one('A')\n",
            "3: this plugin registers models in one(), outside register_model()",
        ),
        (
            "def register_model():\n    from vllm.transformers_utils.config import _CONFIG_REGISTRY\n"
            "    _CONFIG_REGISTRY.update(CONFIGS)\n",
            "3: this plugin registers models in register_model() with an architecture or model_type",
        ),
    ],
    ids=["import-time", "loop", "helper", "registry-update"],
)
def test_registrations_elsewhere_are_a_shape_step_5_does_not_know(source, where):
    with pytest.raises(FlmigrateError) as info:
        plan_registration(source, QWEN3_5)
    message = one_line(info.value)
    assert message.startswith(f"vllm_fl/__init__.py:{where}")
    assert "a register_model() shape step 5 does not know; nothing was written" in message
    assert 'ModelRegistry.register_model("Qwen3_5ForConditionalGeneration"' in message


def test_new_block_goes_before_a_top_level_return_and_not_after_dead_code():
    source = textwrap.dedent("""\
        import logging
        logger = logging.getLogger(__name__)
        def register_model():
            apply_patches()
            return
            legacy()
    """)
    result = plan_registration(source, GEMMA_TEXT_ONLY)
    body = result.source.splitlines()
    assert body.index("    # Register gemma3n_text model") < body.index("    return")
    assert result.source.rstrip().endswith("    legacy()")
    valid_python(result.source)


def test_statements_of_a_dropped_module_go_and_a_block_left_empty_with_them():
    """After a pin bump drops the config bridge vllm_fl.configs.qwen3_5_moe, its registration goes:
    PLUGIN_INIT's config-only block is then empty and goes whole; the other blocks stay as they were."""
    result = plan_registration(PLUGIN_INIT, GEMMA_TEXT_ONLY, dropped=frozenset({"vllm_fl.configs.qwen3_5_moe"}))
    assert result.removed == (
        "from vllm.transformers_utils.config import _CONFIG_REGISTRY",
        "from vllm_fl.configs.qwen3_5_moe import Qwen3_5MoeConfig",
        '_CONFIG_REGISTRY["qwen3_5_moe"] = Qwen3_5MoeConfig',
    )
    assert "qwen3_5_moe" not in result.source and "_CONFIG_REGISTRY" not in result.source
    assert "Register Qwen3.5 MoE config error" not in result.source
    assert registered_entries(result.source) == {
        **registered_entries(PLUGIN_INIT),
        "Gemma3nForCausalLM": "vllm_fl.models.gemma3n_text:Gemma3nForCausalLM",
    }
    valid_python(result.source)
    again = plan_registration(result.source, GEMMA_TEXT_ONLY, dropped=frozenset({"vllm_fl.configs.qwen3_5_moe"}))
    assert not again.changed and again.removed == ()


def test_syntax_error_names_file_and_line():
    source = PLUGIN_INIT.replace("def _unrelated_helper():", "def _unrelated_helper(:")
    line = source[: source.index("_unrelated_helper(:")].count("\n") + 1
    with pytest.raises(FlmigrateError) as info:
        plan_registration(source, QWEN3_5, path="/plugin/vllm_fl/__init__.py")
    message = one_line(info.value)
    assert message.startswith(f"/plugin/vllm_fl/__init__.py:{line}:")
    assert "syntax error" in message
    assert info.value.detail  # the parser's own report
    with pytest.raises(FlmigrateError, match="syntax error"):
        registered_entries(source)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model_name": "Qwen3.5"},
        {"plugin_module": "vllm_fl/models/qwen3_5.py"},
        {"architectures": (("Qwen3_5ForCausalLM", "not a class"),)},
        {"architectures": (("A", "B"), ("A", "C"))},
        {"config": ("qwen3_5", "Qwen3_5Config")},
        {"config": ('qwen"3', "Qwen3_5Config", "vllm_fl.configs.qwen3_5")},
        {"overrides": (("vllm.model_executor.models.qwen3_next", "class"),)},
        {"architectures": (), "config": None, "overrides": ()},
    ],
)
def test_invalid_registration_is_rejected(kwargs):
    fields = {
        "model_name": "qwen3_5",
        "plugin_module": "vllm_fl.models.qwen3_5",
        "architectures": (("Qwen3_5ForCausalLM", "Qwen3_5ForCausalLM"),),
        "config": None,
        **kwargs,
    }
    with pytest.raises(FlmigrateError) as info:
        Registration(**fields)
    one_line(info.value)


def test_registration_accepts_lists():
    registration = Registration(
        "qwen3_5", "vllm_fl.models.qwen3_5", [["A", "B"]], ["qwen3_5", "C", "vllm_fl.configs.x"]
    )
    assert registration.architectures == (("A", "B"),)
    assert registration.config == ("qwen3_5", "C", "vllm_fl.configs.x")
    hash(registration)


# --------------------------------------------------------------------------- reading back


def test_registered_entries_of_the_plugin_shape():
    assert registered_entries(PLUGIN_INIT) == {
        "KimiK25ForConditionalGeneration": "vllm_fl.models.kimi_k25:KimiK25ForConditionalGeneration",
        "MiniCPMO": "vllm_fl.models.minicpmo:MiniCPMO",
    }
    assert registered_configs(PLUGIN_INIT) == {"qwen3_5_moe": "vllm_fl.configs.qwen3_5_moe:Qwen3_5MoeConfig"}
    assert registered_entries(TOPLEVEL_INIT) == {"MiniCPMO": "vllm_fl.models.minicpmo:MiniCPMO"}
    assert registered_entries(PASS_INIT) == {}


def test_registered_entries_ignore_code_outside_register_model():
    source = textwrap.dedent("""\
        from vllm import ModelRegistry

        ModelRegistry.register_model("AtImport", "vllm_fl.models.a:A")


        def register_model():
            def later():
                ModelRegistry.register_model("Nested", "vllm_fl.models.n:N")
            if True:
                ModelRegistry.register_model("Guarded", "vllm_fl.models.g:G")
    """)
    assert registered_entries(source) == {"Guarded": "vllm_fl.models.g:G"}


@pytest.mark.parametrize("reg_id", ALL_REGISTRATIONS)
@pytest.mark.parametrize("init_id", ALL_INITS)
def test_registered_entries_round_trip(init_id, reg_id):
    registration = ALL_REGISTRATIONS[reg_id]
    before = registered_entries(ALL_INITS[init_id])
    after = registered_entries(plan_registration(ALL_INITS[init_id], registration).source)
    expected = {arch: f"{registration.plugin_module}:{cls}" for arch, cls in registration.architectures}
    assert after == {**before, **expected}
    configs = registered_configs(plan_registration(ALL_INITS[init_id], registration).source)
    if registration.config:
        model_type, cls, module = registration.config
        assert configs[model_type] == f"{module}:{cls}"


@pytest.mark.parametrize("reg_id", ALL_REGISTRATIONS)
def test_registration_mismatches_before_and_after_registering(reg_id):
    registration = ALL_REGISTRATIONS[reg_id]
    args = (registration.architectures, registration.plugin_module, registration.config)
    missing = registration_mismatches(PASS_INIT, *args)
    assert [m.key for m in missing] == [a for a, _ in registration.architectures] + (
        [registration.config[0]] if registration.config else []
    )
    assert all(m.actual is None and m.describe().endswith(f"not registered; expected {m.expected}") for m in missing)
    assert registration_mismatches(plan_registration(PASS_INIT, registration).source, *args) == []
    arch, cls = registration.architectures[0]
    moved = registration_mismatches(
        plan_registration(PASS_INIT, registration).source, [(arch, cls)], "vllm_fl.models.elsewhere"
    )
    assert [m.describe() for m in moved] == [
        f"registered as {registration.plugin_module}:{cls}, expected vllm_fl.models.elsewhere:{cls}"
    ]


# --------------------------------------------------------------------------- running it


def test_generated_code_registers_exactly_the_expected_entries(tmp_path):
    source = plan_registration(PASS_INIT, QWEN3_5_MULTI).source
    source = plan_registration(source, QWEN3_NEXT).source
    out, stderr = run_register_model(
        tmp_path,
        source,
        {
            "vllm_fl.configs.qwen3_5": ["Qwen3_5Config"],
            "vllm_fl.models.qwen3_5": ["Qwen3_5ForConditionalGeneration", "Qwen3_5ForCausalLM", "Qwen3_5MTP"],
            "vllm_fl.models.qwen3_next": ["Qwen3NextForCausalLM"],
        },
        overrides=[("vllm.model_executor.models.qwen3_next", "Qwen3NextForCausalLM")],
    )
    assert stderr == ""
    assert out["calls"] == [
        ["Qwen3_5ForConditionalGeneration", "vllm_fl.models.qwen3_5:Qwen3_5ForConditionalGeneration"],
        ["Qwen3_5ForCausalLM", "vllm_fl.models.qwen3_5:Qwen3_5ForCausalLM"],
        ["Qwen3_5MTP", "vllm_fl.models.qwen3_5:Qwen3_5MTP"],
        ["Qwen3NextForCausalLM", "vllm_fl.models.qwen3_next:Qwen3NextForCausalLM"],
    ]
    assert out["configs"] == {"qwen3_5": "vllm_fl.configs.qwen3_5:Qwen3_5Config"}
    assert set(out["resolved"].values()) == {"vllm_fl.models.qwen3_5", "vllm_fl.models.qwen3_next"}
    assert out["overrides"] == {
        "vllm.model_executor.models.qwen3_next.Qwen3NextForCausalLM": "vllm_fl.models.qwen3_next"
    }


def test_generated_code_in_the_plugin_shape_runs(tmp_path):
    source = plan_registration(PLUGIN_INIT, QWEN3_5).source
    source = plan_registration(source, GEMMA_TEXT_ONLY).source
    out, stderr = run_register_model(
        tmp_path,
        source,
        {
            "vllm_fl.configs.qwen3_5": ["Qwen3_5Config"],
            "vllm_fl.configs.qwen3_5_moe": ["Qwen3_5MoeConfig"],
            "vllm_fl.models.qwen3_5": ["Qwen3_5ForConditionalGeneration"],
            "vllm_fl.models.gemma3n_text": ["Gemma3nForCausalLM"],
            "vllm_fl.models.kimi_k25": ["KimiK25ForConditionalGeneration"],
            "vllm_fl.models.minicpmo": ["MiniCPMO"],
        },
    )
    assert stderr == ""
    assert {arch: target for arch, target in out["calls"]} == registered_entries(source)
    assert [arch for arch, _ in out["calls"]] == [
        "KimiK25ForConditionalGeneration",
        "MiniCPMO",
        "Qwen3_5ForConditionalGeneration",
        "Gemma3nForCausalLM",
    ]
    assert (
        out["configs"]
        == registered_configs(source)
        == {
            "qwen3_5_moe": "vllm_fl.configs.qwen3_5_moe:Qwen3_5MoeConfig",
            "qwen3_5": "vllm_fl.configs.qwen3_5:Qwen3_5Config",
        }
    )


def test_generated_code_with_module_level_model_registry_runs(tmp_path):
    source = plan_registration(TOPLEVEL_INIT, QWEN3_5).source
    out, stderr = run_register_model(
        tmp_path,
        source,
        {
            "vllm_fl.configs.qwen3_5": ["Qwen3_5Config"],
            "vllm_fl.models.qwen3_5": ["Qwen3_5ForConditionalGeneration"],
            "vllm_fl.models.minicpmo": ["MiniCPMO"],
        },
    )
    assert stderr == ""
    assert [arch for arch, _ in out["calls"]] == ["MiniCPMO", "Qwen3_5ForConditionalGeneration"]


@pytest.mark.parametrize(("init_id", "level"), [("pass", "WARNING"), ("plugin", "ERROR")])
def test_a_broken_model_logs_once_and_the_others_still_register(tmp_path, init_id, level):
    """One log line at the level the plugin's other blocks log at (PLUGIN_INIT's log errors)."""
    source = plan_registration(ALL_INITS[init_id], QWEN3_5).source  # its config module is missing
    source = plan_registration(source, GEMMA_TEXT_ONLY).source
    plugin = {
        "vllm_fl.models.qwen3_5": ["Qwen3_5ForConditionalGeneration"],
        "vllm_fl.models.gemma3n_text": ["Gemma3nForCausalLM"],
        "vllm_fl.configs.qwen3_5_moe": ["Qwen3_5MoeConfig"],
        "vllm_fl.models.kimi_k25": ["KimiK25ForConditionalGeneration"],
        "vllm_fl.models.minicpmo": ["MiniCPMO"],
    }
    out, stderr = run_register_model(tmp_path, source, plugin)
    assert stderr.splitlines() == [
        f"{level} vllm_fl Register qwen3_5 model error: No module named 'vllm_fl.configs.qwen3_5'"
    ]
    assert "Qwen3_5ForConditionalGeneration" not in dict(out["calls"])
    assert dict(out["calls"])["Gemma3nForCausalLM"] == "vllm_fl.models.gemma3n_text:Gemma3nForCausalLM"
