"""P34 on two small trees: a class attribute read at import that the pin's class lacks is
translated where the trees prove the pin's value, refused with its line otherwise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pytest_flmigrate.autofix import planner
from pytest_flmigrate.autofix.backport import Backporter
from pytest_flmigrate.autofix.relocate import Relocator
from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import p34_import_time_members as p34
from pytest_flmigrate.patches import select_patches
from pytest_flmigrate.patches.base import apply_patches
from pytest_flmigrate.steps import migrate
from tests.fixtures.trees import VLLM_CORE, write
from tests.patches.conftest import PIN

MODELS = "vllm.model_executor.models"
UTILS = """
    class WeightsMapper:
        def __init__(self, orig_to_new_prefix=None, orig_to_new_stacked=None):
            self.prefix = orig_to_new_prefix
        def __or__(self, other):
            return self
"""
PINNED = {
    **VLLM_CORE,
    "vllm/model_executor/models/utils.py": UTILS,
    "vllm/model_executor/models/base.py": """
        import torch.nn as nn
        class BaseModel(nn.Module):
            def load_weights(self, weights):
                stacked_params_mapping = [(".qkv_proj", ".q_proj", "q"), (".qkv_proj", ".k_proj", "k")]
                return stacked_params_mapping
        class BaseForCausalLM(nn.Module):
            packed = {"qkv_proj": ["q_proj", "k_proj"]}
            def load_weights(self, weights):
                return self.model.load_weights(weights)
        class Renamed(nn.Module):
            def load_weights(self, weights):
                return weights
        class HasMapper(nn.Module):
            hf_to_vllm_mapper = None
    """,
}
UPSTREAM = {
    **VLLM_CORE,
    "vllm/model_executor/models/utils.py": UTILS,
    "vllm/model_executor/models/base.py": """
        import torch.nn as nn
        from .utils import WeightsMapper
        class BaseModel(nn.Module):
            hf_to_vllm_mapper = WeightsMapper(
                orig_to_new_stacked={".q_proj": (".qkv_proj", "q"), ".k_proj": (".qkv_proj", "k")}
            )
        class BaseForCausalLM(nn.Module):
            packed = {"qkv_proj": ["q_proj", "k_proj"]}
            hf_to_vllm_mapper = BaseModel.hf_to_vllm_mapper
            layouts = {"text": 1}
        class Renamed(nn.Module):
            hf_to_vllm_mapper = WeightsMapper(orig_to_new_prefix={"model.": "language_model."})
        class HasMapper(nn.Module):
            hf_to_vllm_mapper = WeightsMapper(orig_to_new_prefix={"a.": "b."})
    """,
    "vllm/model_executor/models/newmodel.py": """
        from vllm.model_executor.models.base import BaseForCausalLM

        class NewModel(BaseForCausalLM):
            hf_to_vllm_mapper = BaseForCausalLM.hf_to_vllm_mapper | None

            def load_weights(self, weights):
                return BaseForCausalLM.hf_to_vllm_mapper
    """,
    "vllm/model_executor/models/renamer.py": """
        from vllm.model_executor.models.base import Renamed

        class RenamerModel(Renamed):
            hf_to_vllm_mapper = Renamed.hf_to_vllm_mapper
    """,
    "vllm/model_executor/models/layouts.py": """
        from vllm.model_executor.models.base import BaseForCausalLM

        class LayoutModel(BaseForCausalLM):
            layouts = {**BaseForCausalLM.layouts, "video": 2}
    """,
    "vllm/model_executor/models/pinned_has_it.py": """
        from vllm.model_executor.models.base import HasMapper

        class Model(HasMapper):
            hf_to_vllm_mapper = HasMapper.hf_to_vllm_mapper
            def later(self):
                return HasMapper.layouts
    """,
}


@pytest.fixture(scope="module")
def fixer(tmp_path_factory) -> planner.Fixer:
    base = tmp_path_factory.mktemp("p34")
    upstream = Resolver([index_directory(write(base / "upstream", UPSTREAM), "vllm", "0.99.0")])
    pinned = Resolver([index_directory(write(base / "pinned", PINNED), "vllm", "0.13.0")])
    relocator = Relocator(upstream, pinned)
    return planner.Fixer(upstream, pinned, relocator, Backporter(upstream, pinned, relocator))


def planned(fixer: planner.Fixer, model: str, written: tuple[str, ...] = ()) -> migrate.MigrationPlan:
    """The plan of ``model``, also writing the modules ``written`` (upstream's, into the plugin)."""
    module = f"{MODELS}.{model}"
    index = fixer.upstream.index_for(module)
    info = fixer.upstream.module(module)
    assert index is not None and info is not None
    file = migrate.PlannedFile(module, index.root / info.path, f"vllm_fl.models.{model}", False, "model")
    return migrate.MigrationPlan(
        SimpleNamespace(name=model, architectures=()),
        [file],
        {module: file.plugin_module, **{w: w.replace("vllm.", "vllm_fl.", 1) for w in written}},
        {},
        None,
        "",
    )


def migrated(fixer: planner.Fixer, model: str, ids: str | None = None) -> tuple[migrate.MigrationPlan, str]:
    """The plan of ``model`` with the patches ``ids`` (None: all), and its file once patched."""
    patches = select_patches(ids, PIN)
    plan = planner.plan_fixes(planned(fixer, model), fixer, patches)
    (file,) = [f for f in plan.files if f.role == "model"]
    context = migrate.patch_context(plan, file, SimpleNamespace(version=PIN, transformers_version=PIN))
    return plan, apply_patches(file.source.read_text(encoding="utf-8"), patches, context)[0]


def test_a_stacked_only_mapper_read_at_import_becomes_the_pins_empty_mapper(fixer):
    plan, text = migrated(fixer, "newmodel")
    assert not plan.refused
    assert plan.import_time_members == {(f"{MODELS}.base", "BaseForCausalLM", "hf_to_vllm_mapper"): "WeightsMapper()"}
    assert "    hf_to_vllm_mapper = WeightsMapper() | None\n" in text
    assert "        return WeightsMapper()\n" in text  # the same value inside a function
    # the name it needs is imported, from the pin's module (P21 points it at its port where it applies)
    assert f"from {MODELS}.utils import WeightsMapper\n" in text
    assert "BaseForCausalLM.hf_to_vllm_mapper" not in text


def test_switched_off_the_read_stays_and_the_file_would_fail_at_import(fixer):
    plan, text = migrated(fixer, "newmodel", "P1,P2,P15,P16")
    assert not plan.import_time_members and not plan.refused
    assert "BaseForCausalLM.hf_to_vllm_mapper | None" in text


def test_a_mapper_with_renames_of_its_own_refuses_with_the_line(fixer):
    plan, text = migrated(fixer, "renamer")
    assert plan.refused == {
        "vllm_fl/models/renamer.py": "vllm/model_executor/models/renamer.py:4: Renamed.hf_to_vllm_mapper is read "
        f"at import; the pin's {MODELS}.base.Renamed lacks it, and upstream's Renamed.hf_to_vllm_mapper is "
        "WeightsMapper(orig_to_new_prefix={'model.': 'language_model.'}): a mapper with more than "
        "orig_to_new_stacked (P34 import-time-members)"
    }
    assert "Renamed.hf_to_vllm_mapper" in text and not plan.import_time_members


def test_a_member_without_an_entry_refuses_with_the_line(fixer):
    plan, _ = migrated(fixer, "layouts")
    assert plan.refused == {
        "vllm_fl/models/layouts.py": "vllm/model_executor/models/layouts.py:4: BaseForCausalLM.layouts is read at "
        f"import; the pin's {MODELS}.base.BaseForCausalLM lacks it and no entry gives the pin's value "
        "(P34 import-time-members)"
    }


def test_a_member_the_pins_class_has_and_reads_inside_functions_are_left_alone(fixer):
    plan, text = migrated(fixer, "pinned_has_it")
    assert not plan.refused and not plan.import_time_members
    assert "HasMapper.hf_to_vllm_mapper" in text


def test_the_pin_must_stack_what_upstreams_mapper_stacks(fixer):
    upstream, pinned = fixer.upstream, fixer.pinned
    assert p34._stacked_only(upstream, pinned, (f"{MODELS}.base", "BaseForCausalLM"), ("", "")) is None
    assert p34._stacked_only(upstream, pinned, (f"{MODELS}.base", "Renamed"), ("", "")) is not None
    mappers, why = p34.stacked_mappers(upstream, f"{MODELS}.base", "BaseForCausalLM", "hf_to_vllm_mapper")
    assert why is None and mappers == {(f"{MODELS}.base", "BaseModel"): frozenset({"q_proj", "k_proj"})}


def test_only_files_reading_a_decided_member_are_relevant():
    from tests.patches.conftest import patch_context

    source = "x = A.hf_to_vllm_mapper\n"
    assert not p34.relevant(source, patch_context())
    assert p34.relevant(source, patch_context(import_time_members={("m", "A", "hf_to_vllm_mapper"): "B()"}))


def test_a_class_the_migration_writes_is_upstreams_and_its_reads_are_left_alone(fixer):
    plan = planner.plan_fixes(planned(fixer, "layouts", (f"{MODELS}.base",)), fixer, select_patches(None, PIN))
    assert not plan.refused and not plan.import_time_members
