"""Step 4's planning of relocations and backports, and writing the compat modules."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from packaging.version import Version

from pytest_flmigrate.autofix import planner
from pytest_flmigrate.manifest import Manifest
from pytest_flmigrate.patches import select_patches
from pytest_flmigrate.steps import migrate

PIN = Version("0.13.0")
UTILS = "vllm.model_executor.models.utils"


@pytest.fixture
def fixer(relocator, backporter):
    return planner.Fixer(relocator.upstream, relocator.pinned, relocator, backporter)


def plan_for(trees, model: str, **maps) -> migrate.MigrationPlan:
    upstream, _ = trees
    module = f"vllm.model_executor.models.{model}"
    info = upstream.modules[module]
    planned = migrate.PlannedFile(module, upstream.root / info.path, f"vllm_fl.models.{model}", False, "model")
    return migrate.MigrationPlan(
        SimpleNamespace(
            name=model, architectures=tuple(SimpleNamespace(name=a) for a in maps.get("architectures", ()))
        ),
        [planned],
        {module: f"vllm_fl.models.{model}", **maps.get("module_map", {})},
        maps.get("name_map", {}),
        None,
        "",
    )


def test_relocate_first_backport_second_and_say_why_not(trees, fixer):
    plan = planner.plan_fixes(plan_for(trees, "newmodel"), fixer, select_patches(None, PIN))
    assert plan.relocations == {
        ("vllm.model_executor.layers.attention", "Attention"): ("vllm.attention.layer", "Attention"),
        ("vllm.v1.attention.backend", "AttentionType"): ("vllm.attention.backends.abstract", "AttentionType"),
    }
    assert plan.backports == {(UTILS, "new_helper"): ("vllm_fl.compat.model_executor.models.utils", "new_helper")}
    assert "torch.ops" in plan.unfixed[(UTILS, "uses_kernel")]
    (compat,) = [f for f in plan.files if f.role == "compat"]
    assert compat.target == "vllm_fl/compat/model_executor/models/utils.py"
    assert compat.compat.keep == ("CONST", "_scale", "new_helper") and compat.compat.from_pin == ("logger",)
    # helper_changed exists in the pin's utils: the import works as is (the pin's version)
    assert (UTILS, "helper_changed") not in plan.backports


def test_backport_bringing_upstreams_class_of_a_relocated_name_is_refused(trees, fixer):
    """mixedmodel uses the pin's Attention (relocated) and make_attention, whose copy would bring
    upstream's Attention: the pin's and upstream's classes would meet, so it is not copied."""
    plan = planner.plan_fixes(plan_for(trees, "mixedmodel"), fixer, select_patches(None, PIN))
    assert plan.relocations == {
        ("vllm.model_executor.layers.attention", "Attention"): ("vllm.attention.layer", "Attention")
    }
    assert not plan.backports and [f.role for f in plan.files] == ["model"]
    reason = plan.unfixed[("vllm.model_executor.layers.attention.attention", "make_attention")]
    assert "brings upstream's vllm.model_executor.layers.attention.attention.Attention" in reason
    assert "the pin's vllm.attention.layer.Attention (relocated)" in reason
    # alone (nothing relocated beside it), the same helper is copied with its class
    alone = planner.plan_fixes(plan_for(trees, "mixedmodel"), fixer, select_patches("P1,P16", PIN))
    assert ("vllm.model_executor.layers.attention.attention", "make_attention") in alone.backports


def test_only_selected_fixes_are_planned(trees, fixer):
    only_relocations = planner.plan_fixes(plan_for(trees, "newmodel"), fixer, select_patches("P1,P15", PIN))
    assert only_relocations.relocations and not only_relocations.backports
    assert "not selected" in only_relocations.unfixed[(UTILS, "new_helper")]
    assert [f.role for f in only_relocations.files] == ["model"]
    nothing = planner.plan_fixes(plan_for(trees, "newmodel"), fixer, select_patches("P1,P2", PIN))
    assert (nothing.relocations, nothing.backports, nothing.unfixed) == ({}, {}, {})
    # backports without relocations copy what could have been relocated
    only_backports = planner.plan_fixes(plan_for(trees, "newmodel"), fixer, select_patches("P1,P16", PIN))
    assert not only_backports.relocations
    assert ("vllm.model_executor.layers.attention", "Attention") in only_backports.backports


def test_names_another_mechanism_handles_are_left_to_it(trees, fixer):
    plan = plan_for(trees, "newmodel", name_map={(UTILS, "new_helper"): "vllm_fl.models.helpers"})
    fixed = planner.plan_fixes(plan, fixer, select_patches(None, PIN))
    assert (UTILS, "new_helper") not in fixed.backports


def write(plugin, plan, pinned_index):
    pinned = SimpleNamespace(version=PIN, transformers_version=Version("4.57.6"), index=pinned_index)
    texts = migrate.patched_texts(plan, select_patches(None, PIN), pinned)
    return migrate.write_migration(plan, texts, plugin, plugin / "reports", "test@0.99.0", False)


def migrate_model(trees, fixer, plugin, model):
    patches = select_patches(None, PIN)
    plan = planner.plan_fixes(plan_for(trees, model), fixer, patches)
    plan = planner.with_written_compat(plan, fixer, patches, Manifest(plugin))
    return write(plugin, plan, trees[1])


def test_written_model_imports_the_copies_and_the_compat_module_is_guarded(trees, fixer, plugin):
    results = migrate_model(trees, fixer, plugin, "newmodel")
    assert {r.target: r.role for r in results} == {
        "vllm_fl/models/newmodel.py": "model",
        "vllm_fl/compat/model_executor/models/utils.py": "compat",
    }
    model = (plugin / "vllm_fl/models/newmodel.py").read_text()
    assert "from vllm.attention.layer import Attention\n" in model
    assert "from vllm_fl.compat.model_executor.models.utils import new_helper\n" in model
    assert (plugin / "vllm_fl/compat/__init__.py").exists()
    entry = Manifest(plugin).entries["vllm_fl/compat/model_executor/models/utils.py"]
    assert entry["role"] == "compat" and entry["upstream_module"] == UTILS


def test_compat_modules_are_shared_and_reruns_change_nothing(trees, fixer, plugin):
    migrate_model(trees, fixer, plugin, "newmodel")
    migrate_model(trees, fixer, plugin, "othermodel")
    utils = (plugin / "vllm_fl/compat/model_executor/models/utils.py").read_text()
    assert "def new_helper" in utils and "def quantized" in utils  # the second model kept the first's
    assert (plugin / "vllm_fl/compat/config/helpers.py").exists()
    vllm_compat = (plugin / "vllm_fl/compat/config/vllm.py").read_text()
    assert "return _pinned._current" in vllm_compat
    before = {p: p.read_bytes() for p in plugin.rglob("*") if p.is_file()}
    statuses = {r.status for r in migrate_model(trees, fixer, plugin, "newmodel")}
    assert statuses == {"unchanged"}
    assert {p: p.read_bytes() for p in plugin.rglob("*") if p.is_file()} == before


def test_hand_edit_of_a_compat_module_is_kept(trees, fixer, plugin):
    migrate_model(trees, fixer, plugin, "newmodel")
    path = plugin / "vllm_fl/compat/model_executor/models/utils.py"
    edited = path.read_text().replace("def _scale(n):\n", "def _scale(n):  # FL: checked\n")
    path.write_text(edited)
    results = {r.target: r for r in migrate_model(trees, fixer, plugin, "newmodel")}
    assert results["vllm_fl/compat/model_executor/models/utils.py"].status == "kept"
    assert path.read_text() == edited


def test_claims_say_what_the_fixes_would_rewrite(trees, fixer):
    claim = planner.claims(plan_for(trees, "newmodel"), fixer, select_patches(None, PIN))
    assert claim("relocate", "vllm.v1.attention.backend", "AttentionType")
    assert claim("backport", UTILS, "new_helper")
    assert not claim("backport", UTILS, "uses_kernel")
    pooling = "vllm.model_executor.models.interfaces_base.default_pooling_type"
    assert claim("call-arguments", pooling, "seq_pooling_type")
    assert not claim("call-arguments", pooling, "seq_pooling_type,tok_pooling_type")  # value-dependent
    assert claim("call-arguments", "vllm.config.utils.getattr_iter", "")
    assert not claim("call-arguments", "vllm.other.f", "x")
    none = planner.claims(plan_for(trees, "newmodel"), fixer, select_patches("P1", PIN))
    assert not none("relocate", "vllm.v1.attention.backend", "AttentionType")


def test_imports_an_api_translation_rewrites_are_left_to_it(tmp_path, trees, fixer):
    module = "vllm.model_executor.models.moe"
    source = tmp_path / "moe.py"
    source.write_text(
        "from vllm.model_executor.layers.fused_moe import GateLinear\ngate = GateLinear(8, 4, prefix='gate')\n",
        encoding="utf-8",
    )
    planned = migrate.PlannedFile(module, source, "vllm_fl.models.moe", False, "model")
    text = source.read_text(encoding="utf-8")
    key = ("vllm.model_executor.layers.fused_moe", "GateLinear")
    assert key in planner.translated_imports(text, planned, select_patches(None, PIN))
    assert planner.translated_imports(text, planned, select_patches("P1,P15,P16", PIN)) == set()
    plan = migrate.MigrationPlan(
        SimpleNamespace(name="moe", architectures=()), [planned], {module: "vllm_fl.models.moe"}, {}, None, ""
    )
    fixed = planner.plan_fixes(plan, fixer, select_patches(None, PIN))
    assert key not in fixed.unfixed and not fixed.refused
    assert "vllm_fl/compat/moe_runner.py" in {f.target for f in fixed.files}
    assert key in planner.plan_fixes(plan, fixer, select_patches("P1,P15,P16", PIN)).unfixed


def test_a_use_a_translation_does_not_handle_refuses_the_migration_with_its_line(tmp_path, trees, fixer):
    module = "vllm.model_executor.models.moe"
    source = tmp_path / "moe.py"
    source.write_text(
        "from vllm.model_executor.layers.fused_moe import FusedMoEFactory\n\n"
        "experts = FusedMoEFactory(8, 2, 16, 32, runner_cls=MyRunner)\n",
        encoding="utf-8",
    )
    planned = migrate.PlannedFile(module, source, "vllm_fl.models.moe", False, "model")
    plan = migrate.MigrationPlan(
        SimpleNamespace(name="moe", architectures=()), [planned], {module: "vllm_fl.models.moe"}, {}, None, ""
    )
    fixed = planner.plan_fixes(plan, fixer, select_patches(None, PIN))
    assert fixed.refused == {
        "vllm_fl/models/moe.py": "vllm/model_executor/models/moe.py:3: FusedMoEFactory(8, 2, 16, 32, "
        "runner_cls=MyRunner): runner_cls= has no spelling on the pin's FusedMoE (P19 fused-moe-factory)"
    }
    # without the translation selected there is nothing to refuse: the import is step 6's
    assert not planner.plan_fixes(plan, fixer, select_patches("P1,P15,P16", PIN)).refused


def test_a_file_loading_through_stacked_weights_brings_the_port(tmp_path, trees, fixer):
    module = "vllm.model_executor.models.moe"
    source = tmp_path / "moe.py"
    source.write_text(
        "from vllm.model_executor.models.utils import AutoWeightsLoader, WeightsMapper\n"
        "mapper = WeightsMapper(orig_to_new_stacked={'.q_proj': ('.qkv_proj', 'q')})\n",
        encoding="utf-8",
    )
    planned = migrate.PlannedFile(module, source, "vllm_fl.models.moe", False, "model")
    plan = migrate.MigrationPlan(
        SimpleNamespace(name="moe", architectures=()), [planned], {module: "vllm_fl.models.moe"}, {}, None, ""
    )
    fixed = planner.plan_fixes(plan, fixer, select_patches(None, PIN))
    (shim,) = [f for f in fixed.files if f.role == "compat"]
    assert shim.target == "vllm_fl/compat/stacked_weights.py" and shim.source == planner.SHIMS / "stacked_weights.py"
    # planned once, kept when the compat files are recomputed, absent without P21
    assert planner.with_shims(fixed, select_patches(None, PIN)).files == fixed.files
    assert [f.role for f in planner.plan_fixes(plan, fixer, select_patches("P1,P15,P16", PIN)).files] == ["model"]


def test_what_a_translation_adds_is_backported_and_what_it_rewrites_away_is_not(trees, fixer):
    """P25 rewrites build_mm_input_norm(...) to IdentityInputNorm(): the builder (a kernel inside)
    is not backported, the class it builds with the switch off is."""
    norm = "vllm.model_executor.layers.fusion.mm_input_norm"
    compat = "vllm_fl.compat.model_executor.layers.fusion.mm_input_norm"
    plan = planner.plan_fixes(plan_for(trees, "normmodel"), fixer, select_patches(None, PIN))
    assert plan.backports == {(norm, "IdentityInputNorm"): (compat, "IdentityInputNorm")}
    assert not plan.unfixed
    texts = migrate.patched_texts(
        plan, select_patches(None, PIN), SimpleNamespace(version=PIN, transformers_version=Version("4.57.6"))
    )
    model, _ = texts["vllm_fl/models/normmodel.py"]
    assert model.splitlines()[0] == f"from {compat} import IdentityInputNorm"
    assert "self.input_norm = IdentityInputNorm()" in model
    copy, _ = texts["vllm_fl/compat/model_executor/layers/fusion/mm_input_norm.py"]
    assert "class IdentityInputNorm" in copy and "FusedMMInputNorm" not in copy
    without = planner.plan_fixes(plan_for(trees, "normmodel"), fixer, select_patches("P1,P15,P16", PIN))
    assert "torch.ops" in without.unfixed[(norm, "build_mm_input_norm")] and not without.backports


def test_a_copy_spelling_one_name_two_ways_uses_its_copy_for_both(trees, fixer):
    """heads.py imports Act, which the pin has elsewhere (relocatable), and act_for, whose copy
    brings upstream's Act along: both spellings use the copy, never the pin's class beside it."""
    pool = "vllm.model_executor.layers.pool"
    plan = planner.plan_fixes(plan_for(trees, "poolmodel"), fixer, select_patches(None, PIN))
    assert not plan.unfixed
    assert (f"{pool}.acts", "Act") not in plan.relocations
    kept = {f.upstream_module: f.compat.keep for f in plan.files if f.compat is not None}
    assert kept == {f"{pool}.acts": ("Act", "act_for"), f"{pool}.heads": ("make_head",)}
    texts = migrate.patched_texts(
        plan, select_patches(None, PIN), SimpleNamespace(version=PIN, transformers_version=Version("4.57.6"))
    )
    heads, _ = texts["vllm_fl/compat/model_executor/layers/pool/heads.py"]
    assert "from vllm_fl.compat.model_executor.layers.pool.acts import Act, act_for" in heads


def test_a_name_upstreams_module_getattr_computes_comes_with_that_getattr(trees, fixer, plugin):
    """``PIN_MEMORY`` is computed on first access by upstream's module ``__getattr__``: the compat
    module gets that ``__getattr__`` (its calls into the pin imported from the pin), and a lazy
    name whose ``__getattr__`` cannot be copied says why."""
    plan = planner.plan_fixes(plan_for(trees, "pinnedmodel"), fixer, select_patches(None, PIN))
    torch_utils = "vllm.utils.torch_utils"
    assert plan.backports[(torch_utils, "PIN_MEMORY")] == ("vllm_fl.compat.utils.torch_utils", "PIN_MEMORY")
    (compat,) = [f for f in plan.files if f.role == "compat"]
    assert compat.upstream_module == torch_utils and compat.compat.keep == ("__getattr__",)
    assert "torch.ops" in plan.unfixed[("vllm.utils.lazy_kernels", "KERNEL")]
    plan = planner.with_written_compat(plan, fixer, select_patches(None, PIN), Manifest(plugin))
    write(plugin, plan, trees[1])
    model = (plugin / "vllm_fl/models/pinnedmodel.py").read_text()
    assert "from vllm_fl.compat.utils.torch_utils import PIN_MEMORY\n" in model
    copied = (plugin / "vllm_fl/compat/utils/torch_utils.py").read_text()
    assert "from vllm.utils.platform_utils import is_pin_memory_available" in copied
    assert 'if name == "PIN_MEMORY":' in copied and "direct_register_custom_op" not in copied


def test_a_config_hook_upstream_runs_at_startup_is_copied_for_step_5_to_register(trees, fixer, plugin):
    """BidirectionalModel's hook (MODELS_CONFIG_MAP) is copied with what it uses, on the pin's base
    (P30 points it at the shim's); OldModel keeps the pin's own hook; KernelModel's cannot be copied."""
    architectures = ("BidirectionalModel", "OldModel", "KernelModel")
    plan = planner.plan_fixes(
        plan_for(trees, "newmodel", architectures=architectures), fixer, select_patches(None, PIN)
    )
    assert plan.config_hooks == {"BidirectionalModel": "BidirectionalModelConfig"}
    hooks = "vllm.model_executor.models.config"
    assert "torch.ops" in plan.unfixed[(hooks, "KernelModelConfig")]
    (compat,) = [f for f in plan.files if f.upstream_module == hooks]
    assert compat.compat.keep == ("BidirectionalModelConfig", "_embedding_size")
    assert compat.compat.from_pin == ("VerifyAndUpdateConfig",)
    plan = planner.with_written_compat(plan, fixer, select_patches(None, PIN), Manifest(plugin))
    results = write(plugin, migrate.without_unimported_compat(plan, texts_of(plan), plugin), trees[1])
    assert {r.target for r in results} >= {
        "vllm_fl/compat/model_executor/models/config.py",
        "vllm_fl/compat/config_hook.py",
    }
    copied = (plugin / "vllm_fl/compat/model_executor/models/config.py").read_text()
    assert "from vllm_fl.compat.config_hook import VerifyAndUpdateConfig" in copied
    assert "class BidirectionalModelConfig(VerifyAndUpdateConfig):" in copied and "OldModelConfig" not in copied


def texts_of(plan):
    pinned = SimpleNamespace(version=PIN, transformers_version=Version("4.57.6"), index=None)
    return migrate.patched_texts(plan, select_patches(None, PIN), pinned)


def test_a_copy_using_an_operator_the_pins_class_of_the_same_name_lacks_brings_upstreams_class(trees, fixer):
    """``merged`` does ``updates |= part`` on UpdateParams; the pin has the class at the same path
    without ``__or__``, so the copy brings upstream's class along rather than the pin's."""
    plan = planner.plan_fixes(plan_for(trees, "mergemodel"), fixer, select_patches(None, PIN))
    updates = "vllm.model_executor.layers.pooler_updates"
    assert ("vllm.model_executor.layers.pool.merge", "merged") in plan.backports
    (compat,) = [f for f in plan.files if f.upstream_module == updates]
    assert compat.compat.keep == ("UpdateParams",)
