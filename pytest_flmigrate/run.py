"""One migration run: the shared trees of a session and, per model, each step's result.

``Workspace`` resolves what every model of a session shares (upstream tree, pinned trees and
their indexes); ``ModelRun`` performs the steps for one model. Every action is memoized,
failures included, so each step's tests assert on one result and a failure is reported once
per step rather than recomputed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_flmigrate.e2e.results import ResultStore
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.layout import REGISTRATION_FILE
from pytest_flmigrate.manifest import Manifest, atomic_write
from pytest_flmigrate.memo import memoized
from pytest_flmigrate.settings import Settings

if TYPE_CHECKING:  # the work is imported by the step that needs it: `-k e2e` loads none of it
    from filelock import FileLock

    from pytest_flmigrate.autofix import planner
    from pytest_flmigrate.autofix.bridge import Bridge
    from pytest_flmigrate.index import records, sources
    from pytest_flmigrate.index.pinned import Pinned
    from pytest_flmigrate.runtime_run import RuntimeRun
    from pytest_flmigrate.steps import discover, migrate, patterns, register
    from pytest_flmigrate.steps.serve import ServerPool

PLUGIN_LOCK = Path(".flmigrate/.lock")


class Workspace:
    """What all models of one session share."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runs: dict[str, ModelRun] = {}

    def run_for(self, model: str) -> ModelRun:
        if model not in self.runs:
            self.runs[model] = ModelRun(self, model)
        return self.runs[model]

    @functools.cached_property
    def servers(self) -> ServerPool:
        """Step 10's local servers of this session (steps/serve.py)."""
        from pytest_flmigrate.steps.serve import ServerPool

        return ServerPool(keep=self.settings.keep_servers)

    @memoized
    def upstream(self) -> sources.SourceTree:
        from pytest_flmigrate.index.upstream import resolve_upstream

        return resolve_upstream(self.settings.upstream, self.settings.upstream_ref)

    @memoized
    def upstream_index(self) -> records.TreeIndex:
        from pytest_flmigrate.index import build

        return build.build_index(self.upstream())

    @memoized
    def upstream_transformers(self) -> sources.SourceTree:
        from pytest_flmigrate.index import sources

        return sources.companion_tree(self.upstream(), "transformers", "transformers", "--upstream")

    @memoized
    def upstream_transformers_index(self) -> records.TreeIndex:
        from pytest_flmigrate.index import build

        return build.build_index(self.upstream_transformers())

    @memoized
    def newer_transformers(self) -> tuple[sources.SourceTree, records.TreeIndex]:
        """A transformers release newer than upstream's (configs upstream's lacks), and its index."""
        from pytest_flmigrate.index import build, sources

        tree = sources.newer_release_tree(self.upstream_transformers(), "transformers", "transformers", "--upstream")
        return tree, build.build_index(tree)

    @memoized
    def pinned(self) -> Pinned:
        from pytest_flmigrate.index.pinned import resolve_pinned

        return resolve_pinned(self.settings.pinned, self.settings.vllm_python)

    @memoized
    def local_patches(self):
        """The plugin's own patches (``--local-patches``; patches/local.py)."""
        from pytest_flmigrate.settings import local_patches

        return local_patches(self.settings)

    @memoized
    def patches(self):
        """The patches step 4 applies: the catalog's that apply to the pin, then the plugin's own
        (as ``--patches`` selects)."""
        from pytest_flmigrate.autofix.planner import for_pin
        from pytest_flmigrate.patches import select_patches

        pinned = self.pinned()
        selected = select_patches(self.settings.patches, pinned.version, pinned.resolver, self.local_patches())
        return for_pin(selected, pinned.resolver)

    @memoized
    def fixer(self) -> planner.Fixer:
        """Step 4's relocations and backports: both trees compared, decisions memoized."""
        from pytest_flmigrate.autofix import planner

        pinned = self.pinned()
        return planner.Fixer.for_trees(
            [self.upstream_index(), self.upstream_transformers_index()],
            pinned.resolver,
            [pinned.index, pinned.transformers_index],
        )


#: How a step's tests fold into its outcome: the highest rank wins.
OUTCOME_RANK = {"skipped": 0, "passed": 1, "blocked": 2, "failed": 3}


@dataclass
class StepRecord:
    name: str
    outcome: str = "passed"
    reason: str = ""
    seconds: float = 0.0
    tests: int = 0
    #: A test failed for a reason other than an EnvironmentProblem (the port's own failure).
    port_failed: bool = False

    def add(self, outcome: str, reason: str, seconds: float, environment: bool = False) -> None:
        """Fold one test's outcome in: the step takes the worst (failed, then blocked); it passes
        when a test passed and none failed, and is skipped only when all its tests were.
        ``environment``: the test failed with an EnvironmentProblem."""
        self.tests += 1
        self.seconds += seconds
        self.port_failed = self.port_failed or (outcome == "failed" and not environment)
        if self.tests == 1 or OUTCOME_RANK[outcome] > OUTCOME_RANK[self.outcome]:
            self.outcome = outcome
            self.reason = reason


@dataclass
class ModelRun:
    workspace: Workspace
    name: str
    steps: dict[int, StepRecord] = field(default_factory=dict)
    #: The runtime half, once a runtime step asked for it (None: no runtime step ran here).
    started_runtime: RuntimeRun | None = None
    #: The plan step 4 wrote in this process (written_plan()).
    _written_plan: migrate.MigrationPlan | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        return self.workspace.settings

    @property
    def report_dir(self) -> Path:
        return self.settings.reports_dir / self.name

    def hf_config(self) -> dict | None:
        from pytest_flmigrate.steps import discover

        return discover.load_hf_config(self.settings.served_model)

    @memoized
    def unit(self) -> discover.ModelUnit:
        from pytest_flmigrate.steps import discover

        workspace = self.workspace
        return discover.find_unit(
            workspace.upstream(),
            workspace.upstream_index(),
            workspace.upstream_transformers_index(),
            workspace.upstream_transformers().package_dir,
            self.name,
            self.hf_config(),
            newer_transformers=workspace.newer_transformers,
        )

    @memoized
    def pattern(self) -> patterns.PatternDecision:
        from pytest_flmigrate.steps import patterns

        batch = set(self.settings.model)
        with self.plugin_lock():  # files and manifest seen together, never half-written by a worker
            written_for_batch = {
                Path(path).stem
                for path, entry in Manifest(self.settings.plugin_dir).entries.items()
                if entry.get("model") in batch
            }
            return patterns.decide_pattern(
                self.unit(), self.workspace.upstream().root, self.settings.plugin_dir, written_for_batch
            )

    def config_index(self) -> records.TreeIndex | None:
        """The index defining the unit's config class: upstream vLLM's, upstream transformers' or
        a newer transformers'."""
        from pytest_flmigrate.steps import discover

        config = self.unit().config
        if config is None:
            return None
        if config.origin == "transformers":
            return self.workspace.upstream_transformers_index()
        if config.origin == discover.NEWER_TRANSFORMERS:
            return self.workspace.newer_transformers()[1]
        return self.workspace.upstream_index()

    @memoized
    def bridge(self) -> tuple[Bridge | None, str]:
        from pytest_flmigrate.autofix.bridge import decide_bridge

        return decide_bridge(self.unit(), self.workspace.pinned(), self.config_index())

    @memoized
    def plan(self) -> migrate.MigrationPlan:
        from pytest_flmigrate.autofix import planner
        from pytest_flmigrate.steps import migrate

        found, reason = self.bridge()
        plan = migrate.plan_migration(
            self.unit(),
            self.workspace.upstream_index(),
            self.workspace.pinned(),
            self.settings.plugin_dir,
            found,
            reason,
            self.config_index() if found is not None else None,
        )
        return planner.plan_fixes(plan, self.workspace.fixer(), self.workspace.patches())

    @memoized
    def migration(self) -> list[migrate.FileResult]:
        from pytest_flmigrate.steps import migrate

        plan = self.plan()
        if plan.refused:  # a translation met a use it does not handle: write nothing
            first, *others = plan.refused.values()
            raise FlmigrateError(
                f"{first}; port it by hand, nothing was written",
                "also refused: " + "; ".join(others) if others else "",
            )
        upstream_tree = self.workspace.upstream()
        label = f"{upstream_tree.source}@{upstream_tree.commit or upstream_tree.version}"
        with self.plugin_lock():
            plan, texts = self._plan_to_write()
            self._written_plan = plan
            return migrate.write_migration(
                plan,
                texts,
                self.settings.plugin_dir,
                self.report_dir,
                label,
                self.settings.force,
                self.workspace.pinned(),
                self.own_keys(),
            )

    def written_plan(self) -> migrate.MigrationPlan:
        """The plan as step 4 writes it (what the import smoke imports and step 6 reviews): this
        process's step 4's, else computed the same way."""
        if self._written_plan is None:
            self._written_plan = self._plan_to_write()[0]
        return self._written_plan

    def _plan_to_write(self) -> tuple[migrate.MigrationPlan, dict[str, tuple[str, dict[str, int]]]]:
        """The plan with the compat definitions the plugin's other models import kept (compat
        modules are shared) and the compat modules nothing imports once patched left out; the
        patched texts."""
        from pytest_flmigrate.autofix import planner
        from pytest_flmigrate.steps import migrate

        keys, patches = self.own_keys(), self.workspace.patches()
        plan = planner.with_written_compat(
            self.plan(), self.workspace.fixer(), patches, Manifest(self.settings.plugin_dir), keys
        )
        texts = migrate.patched_texts(plan, patches, self.workspace.pinned())
        return migrate.without_unimported_compat(plan, texts, self.settings.plugin_dir, keys), texts

    def own_keys(self) -> tuple[str, ...]:
        """What marks this model's blocks of register_model(): its architectures and model_type."""
        unit = self.unit()
        model_type = (unit.config.model_type,) if unit.config else ()
        return (*(arch.name for arch in unit.architectures), *model_type)

    def registration_request(self) -> register.Registration:
        from pytest_flmigrate.autofix.backport import compat_module
        from pytest_flmigrate.index import registries
        from pytest_flmigrate.steps import register

        plan = self.plan()
        pinned_archs = self.workspace.pinned().architectures
        architectures = tuple((arch.name, arch.class_name) for arch in self.unit().architectures)
        modules = {plan.module_map[arch.dotted_module] for arch in self.unit().architectures}
        if len(modules) != 1:
            raise FlmigrateError(
                f"model '{self.name}' registers architectures from several modules "
                f"({', '.join(sorted(modules))}); register them by hand"
            )
        config = None
        if plan.bridge is not None:
            config = (plan.bridge.model_type, plan.bridge.class_name, plan.bridge.plugin_module)
        overrides = tuple(
            (pinned_archs[name].dotted_module, pinned_archs[name].class_name)
            for name, _ in architectures
            if name in pinned_archs
        )
        hooks = tuple(
            (arch, hook, compat_module(registries.CONFIG_HOOKS_MODULE))
            for arch, hook in sorted(plan.config_hooks.items())
        )
        return register.Registration(self.name, modules.pop(), architectures, config, overrides, hooks)

    @memoized
    def registration(self) -> register.RegistrationResult:
        from pytest_flmigrate.steps import register, stale

        init = self.settings.plugin_dir / REGISTRATION_FILE
        if not init.exists():
            raise FlmigrateError(
                f"{init}: missing; the plugin checkout needs {REGISTRATION_FILE} with register_model()"
            )
        request = self.registration_request()
        # what step 4 dropped (a config bridge the new pin does not need) is registered no more
        dropped = frozenset(stale.module_of(r.target)[0] for r in self.migration() if r.status == "dropped")
        with self.plugin_lock():
            result = register.plan_registration(init.read_text(encoding="utf-8"), request, REGISTRATION_FILE, dropped)
            if result.changed:
                atomic_write(init, result.source)
        return result

    def unresolved_registrations(self) -> list:
        """What this model's part of register_model() imports or registers that does not exist at
        run time, judged against the pinned trees and the plugin as written (registrations.Unresolved)."""
        from pytest_flmigrate.index.build import index_directory
        from pytest_flmigrate.index.resolve import Resolver
        from pytest_flmigrate.layout import PLUGIN_PACKAGE
        from pytest_flmigrate.steps import registrations

        pinned = self.workspace.pinned()
        resolver = Resolver(
            [pinned.index, pinned.transformers_index, index_directory(self.settings.plugin_dir, PLUGIN_PACKAGE)]
        )
        source = self.registration().source
        return registrations.unresolved_entries(source, self.registration_request().keys(), resolver)

    def plugin_lock(self) -> FileLock:
        """Serializes writes into the plugin checkout across parallel workers (pytest-xdist)."""
        from filelock import FileLock

        path = self.settings.plugin_dir / PLUGIN_LOCK
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path))

    @property
    def port(self) -> int:
        """This model's local server port: --port, offset by the model's place in the batch."""
        return self.settings.port + self.settings.model.index(self.name)

    @property
    def runtime(self) -> RuntimeRun:
        """Steps 1, 4 smoke, 5 resolution and 7-10, run in the pinned env (runtime_run.py)."""
        if self.started_runtime is None:
            from pytest_flmigrate.runtime_run import RuntimeRun

            self.started_runtime = RuntimeRun(self)
        return self.started_runtime

    @functools.cached_property
    def e2e(self) -> ResultStore:
        """Step 11: saved GT/local results under reports/<model>/e2e/ and each prompt's outcome."""
        return ResultStore(self.report_dir / "e2e")

    def review_context(self):
        """Step 6's view of this migration (review/): pinned and upstream indexes, the plan's files."""
        from pytest_flmigrate.autofix import planner
        from pytest_flmigrate.patches import select_patches
        from pytest_flmigrate.review import MigratedFile, ReviewContext

        plan, unit, workspace = self.plan(), self.unit(), self.workspace
        pinned = workspace.pinned()
        # every catalog patch that applies to the pin, selected by --patches or not: a finding
        # names the patch that would fix it, and the claims are what P15/P16/P17 would fix
        every_patch = planner.for_pin(
            select_patches(None, pinned.version, pinned.resolver, workspace.local_patches()), pinned.resolver
        )
        modules = {plan.module_map.get(arch.dotted_module) for arch in unit.architectures}
        return ReviewContext(
            plugin_dir=self.settings.plugin_dir,
            pinned_indexes=[pinned.index, pinned.transformers_index],
            files=[MigratedFile.at(f.target, f.role, f.upstream_module) for f in self.written_plan().files],
            upstream_indexes=[workspace.upstream_index(), workspace.upstream_transformers_index()],
            model_type=unit.config.model_type if unit.config else None,
            config_class=unit.config.class_name if unit.config else None,
            bridge=(plan.bridge.model_type, plan.bridge.class_name, plan.bridge.plugin_module) if plan.bridge else None,
            architectures=tuple((arch.name, arch.class_name) for arch in unit.architectures),
            plugin_module=modules.pop() if len(modules) == 1 else None,
            catalog={patch.name: patch.id for patch in every_patch},
            claims=planner.claims(plan, workspace.fixer(), every_patch),
            unfixed=plan.unfixed,
        )

    @memoized
    def review_cases(self) -> list:
        """Step 6's tests: (check, file) pairs as the last review saved them, else from the plan
        (known before step 4 writes). Collection plans nothing once a review ran."""
        from pytest_flmigrate.steps import review_cases

        saved = review_cases.load(self.report_dir)
        if saved:
            return saved
        from pytest_flmigrate.review import cases

        return cases(self.review_context())

    @memoized
    def review(self) -> list:
        """Step 6: every finding of every check on the files step 4 wrote (review.Finding)."""
        from pytest_flmigrate.review import cases, review
        from pytest_flmigrate.steps import review_cases

        self.migration()
        try:
            self.registration()  # the registration check reads step 5's result (batches may reorder)
        except FlmigrateError:
            pass  # step 5 reports it; the registration check lists what the file lacks
        context = self.review_context()
        review_cases.save(self.report_dir, cases(context))
        return review(context)

    def uncollected_findings(self) -> list:
        """Findings of (check, file) pairs no step 6 test was collected for (the files changed
        since the cases were saved)."""
        from pytest_flmigrate.steps.review_cases import Case

        collected = set(self.review_cases())
        return [f for f in self.review() if Case(f.check, f.file) not in collected]

    def record(
        self, step: int, name: str, outcome: str, reason: str, seconds: float, environment: bool = False
    ) -> None:
        self.steps.setdefault(step, StepRecord(name)).add(outcome, reason, seconds, environment)

    def record_time(self, step: int, name: str, seconds: float) -> None:
        """Time spent in a step's fixtures (where the migration work itself happens)."""
        self.steps.setdefault(step, StepRecord(name)).seconds += seconds

    def blocking(self, dependencies: tuple[int, ...], in_env: bool = True) -> tuple[int, str] | None:
        """The first dependency that failed or was blocked, with its reason. A step that does not
        run in the env of --vllm-python (``in_env`` False) is not blocked by a dependency whose
        only failures were that env's problems."""
        for step in dependencies:
            record = self.steps.get(step)
            if record and record.outcome in ("failed", "blocked"):
                if record.outcome == "failed" and not record.port_failed and not in_env:
                    continue
                return step, record.reason
        return None
