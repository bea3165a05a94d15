"""Backports: closures over the pin, refusals, and the pruned compat module text."""

from __future__ import annotations

import ast

import pytest

from pytest_flmigrate.autofix.backport import Backporter, compat_module
from pytest_flmigrate.autofix.compat_source import LIVE_MODULE, CompatSpec, ModuleSource, compat_header
from pytest_flmigrate.autofix.env_flags import missing_flags
from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.resolve import Resolver
from tests.fixtures.trees import write
from tests.unit.autofix.conftest import UPSTREAM, never

UTILS = "vllm.model_executor.models.utils"


def test_compat_module_names():
    assert compat_module("vllm.model_executor.models.utils") == "vllm_fl.compat.model_executor.models.utils"
    assert compat_module("transformers.models.x.processing_x") == "vllm_fl.compat.transformers.models.x.processing_x"


def test_helper_comes_with_its_own_definitions(backporter):
    closure = backporter.closure((UTILS, "new_helper"), never)
    assert closure.failure is None
    assert closure.definitions == {(UTILS, "new_helper"), (UTILS, "_scale"), (UTILS, "CONST")}
    assert closure.shared == {(UTILS, "logger")}  # the pin's module has its own logger: imported, not copied


def test_imports_are_relocated_or_copied_transitively(backporter):
    closure = backporter.closure((UTILS, "typed_helper"), never)
    assert closure.failure is None
    # AttentionType moved: the copy imports it from the pin's module; VllmConfig works as is
    assert closure.relocations == {
        ("vllm.v1.attention.backend", "AttentionType"): ("vllm.attention.backends.abstract", "AttentionType")
    }
    closure = backporter.closure((UTILS, "quantized"), never)
    # is_quantized_kv_cache changed its code: the upstream function is copied from its module
    assert closure.redirects == {
        ("vllm.v1.attention.backend", "is_quantized_kv_cache"): ("vllm.v1.attention.backend", "is_quantized_kv_cache")
    }
    assert ("vllm.v1.attention.backend", "is_quantized_kv_cache") in closure.definitions


def test_attribute_of_a_relocated_class_the_pin_lacks(backporter):
    # encoder_only_kind reads AttentionType.ENCODER_ONLY: checked against the pin's class
    direct = backporter.direct((UTILS, "encoder_only_kind"))
    (use,) = [u for u in direct.uses if u.binding.name == "AttentionType"]
    assert use.attributes == {"ENCODER_ONLY"}
    verdict, reason = backporter.use_status(use)
    assert verdict == "fail" and "AttentionType.ENCODER_ONLY" in reason
    assert "lacks" in backporter.closure((UTILS, "encoder_only_kind"), never).failure


def test_function_local_imports_are_checked_too(backporter):
    closure = backporter.closure((UTILS, "local_import"), never)
    assert closure.relocations == {
        ("vllm.model_executor.layers.attention", "Attention"): ("vllm.attention.layer", "Attention")
    }


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("uses_kernel", "torch.ops kernels"),
        ("uses_new_flag", "uses vllm.envs.VLLM_NEW, which the pin lacks"),
        (
            "SiluAgain",
            "registers itself at import (@CustomOp.register(...)), 'silu_and_mul' is registered by the pin already",
        ),
        ("chain_0", "too big to backport: more than 30 definitions"),
        ("block_size_of", "uses CacheConfig.user_block_size, which the pin's vllm.config.cache.CacheConfig lacks"),
    ],
)
def test_refused(backporter, name, reason):
    closure = backporter.closure((UTILS, name), never)
    assert reason in closure.failure


POOLER = "vllm.model_executor.layers.pooler_methods"


def test_member_the_pin_spells_differently_is_refused_without_p24(backporter):
    failure = backporter.closure((POOLER, "cursor_of"), never).failure
    assert "uses PoolingMetadata.get_pooling_cursor, which the pin's vllm.v1.pool.metadata.PoolingMetadata lacks" in (
        failure
    )
    assert "nearest there: pooling_cursor" in failure


@pytest.mark.parametrize(
    ("name", "failure"),
    [
        ("cursor_of", None),  # P24 rewrites the call: the copy reads pooling_cursor
        ("cursor_getter", "uses PoolingMetadata.get_pooling_cursor"),  # not called: P24 leaves it
        ("chunks_of", "uses PoolingMetadata.get_chunks"),  # no entry
    ],
)
def test_member_drift_makes_a_copy_acceptable_only_where_p24_rewrites_every_read(relocator, name, failure):
    drifting = Backporter(relocator.upstream, relocator.pinned, relocator, member_drift=True)
    found = drifting.closure((POOLER, name), never).failure
    assert found is None if failure is None else failure in found


def test_registering_a_name_the_pin_never_registers_is_allowed(backporter):
    assert backporter.pinned_registrations >= {"silu_and_mul"}
    assert backporter.closure((UTILS, "NewOp"), never).failure is None


def test_module_attributes_the_pin_has_are_fine(backporter):
    assert backporter.closure((UTILS, "uses_old_flag"), never).failure is None


def test_bound_is_configurable(trees, relocator):
    generous = Backporter(relocator.upstream, relocator.pinned, relocator, max_definitions=50, max_lines=500)
    assert generous.closure((UTILS, "chain_0"), never).failure is None


def test_handled_names_count_as_working(backporter):
    closure = backporter.closure((UTILS, "quantized"), lambda module, name: name == "is_quantized_kv_cache")
    assert closure.redirects == {} and closure.definitions == {(UTILS, "quantized")}


def test_global_the_pin_rebinds_is_read_through_its_module(backporter):
    closure = backporter.closure(("vllm.config.vllm", "get_current_or_none"), never)
    assert closure.failure is None
    assert closure.live == {("vllm.config.vllm", "_current")}
    text = ModuleSource("vllm.config.vllm", _source("vllm/config/vllm.py"), False).pruned(
        {"get_current_or_none"}, "header", (), ("_current",)
    )
    assert f"import vllm.config.vllm as {LIVE_MODULE}" in text
    assert f"return {LIVE_MODULE}._current" in text
    assert "def set_current" not in text


def _source(path: str) -> str:
    import textwrap

    return textwrap.dedent(UPSTREAM[path]).lstrip("\n")


def test_pruned_module_keeps_formatting_comments_header_and_only_used_imports():
    module = ModuleSource(UTILS, _source("vllm/model_executor/models/utils.py"), False)
    text = module.pruned({"new_helper", "_scale", "CONST"}, compat_header(UTILS), ("logger",))
    tree = ast.parse(text)
    assert text.startswith("# SPDX-License-Identifier: Apache-2.0\n# Backported from upstream")
    assert '# the helper the new model imports\ndef new_helper(n):\n    """Scaled n."""' in text
    assert f"from {UTILS} import logger" in text
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert defined == {"new_helper", "_scale"}
    assert "import torch" not in text and "envs" not in text and "CustomOp" not in text
    assert "Utilities." not in text  # upstream's module docstring describes the whole module


def test_a_name_kept_as_a_copy_is_not_also_imported_from_the_pin():
    """One model's closure took ``_scale`` from the pin, another's copies it: the copy serves both
    (importing it from the pin's module would be rewritten to the compat module itself)."""
    module = ModuleSource(UTILS, _source("vllm/model_executor/models/utils.py"), False)
    text = module.pruned({"new_helper", "_scale"}, compat_header(UTILS), ("_scale", "logger"))
    assert f"from {UTILS} import logger\n" in text
    assert "_scale" in {node.name for node in ast.parse(text).body if isinstance(node, ast.FunctionDef)}


def test_type_checking_block_is_trimmed_and_keeps_its_guard():
    module = ModuleSource(UTILS, _source("vllm/model_executor/models/utils.py"), False)
    text = module.pruned({"typed_helper"}, "h")
    assert "from typing import TYPE_CHECKING\n" in text
    assert "if TYPE_CHECKING:\n    from vllm.config import VllmConfig\n" in text
    assert "from vllm.v1.attention.backend import AttentionType\n" in text  # is_quantized_kv_cache trimmed
    compile(text, "compat.py", "exec")


def test_import_trimming_keeps_statement_formatting():
    source = "from a import (\n    x,  # keep\n    y,\n    z,\n)\nimport os, sys\n\n\ndef f():\n    return x, z, sys\n"
    text = ModuleSource("vllm.m", source, False).pruned({"f"}, "h")
    assert "from a import (\n    x,  # keep\n    z,\n)\n" in text
    assert "import sys\n" in text and "os" not in text


def test_compat_spec_is_hashable_for_caching():
    assert hash(CompatSpec(("a",), ("b",), ()))


def test_a_copy_reading_a_flag_p25_serves_is_accepted_only_with_p25(relocator, backporter):
    # VLLM_OLD: the pin has it; VLLM_HELPER: its getter calls a helper of envs.py, no default known
    assert missing_flags(relocator.upstream, relocator.pinned) == {"VLLM_NEW": False}
    with_flags = Backporter(relocator.upstream, relocator.pinned, relocator, env_flags=frozenset({"VLLM_NEW"}))
    assert with_flags.closure((UTILS, "uses_new_flag"), never).failure is None
    assert "uses vllm.envs.VLLM_NEW" in backporter.closure((UTILS, "uses_new_flag"), never).failure
    assert "uses vllm.envs.VLLM_HELPER" in with_flags.closure((UTILS, "uses_helper_flag"), never).failure


def test_a_helper_using_a_renamed_transformers_class_shares_the_pins_class_with_p14(tmp_path):
    """transformers 5's remap_legacy_layer_types annotates PreTrainedConfig, defined in its own
    module; the pin's transformers spells it PretrainedConfig there (P14's rename)."""
    upstream = write(
        tmp_path / "upstream",
        {
            "transformers/__init__.py": "",
            "transformers/configuration_utils.py": """
                from typing import dataclass_transform
                @dataclass_transform()
                class PreTrainedConfig:
                    pass
                PretrainedConfig = PreTrainedConfig
                def remap(config: PreTrainedConfig | None = None):
                    return config
            """,
        },
    )
    pinned = write(
        tmp_path / "pinned",
        {"transformers/__init__.py": "", "transformers/configuration_utils.py": "class PretrainedConfig:\n    pass\n"},
    )
    theirs = Resolver([index_directory(upstream, "transformers", "5.20.2")])
    ours = Resolver([index_directory(pinned, "transformers", "4.57.6")])
    definition = ("transformers.configuration_utils", "remap")
    closure = Backporter(theirs, ours, None, renames=True).closure(definition, never)
    assert closure.failure is None
    assert closure.definitions == {definition}
    assert closure.shared == {("transformers.configuration_utils", "PreTrainedConfig")}
    without = Backporter(theirs, ours, None).closure(definition, never).failure
    assert "PreTrainedConfig is decorated with @dataclass_transform" in without
