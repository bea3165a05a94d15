"""The runtime half of one model's run (steps 1, 4 smoke, 5 resolution, 7-10), memoized like ModelRun.

Everything runs as subprocesses of ``--vllm-python``; this process never imports vLLM or torch.
Each step first checks that the env holds what it needs (probe.require), so the first step that
needs a missing piece fails with one line. Logs and JUnit files go to ``reports/<model>/logs/``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_flmigrate.envs import probe
from pytest_flmigrate.envs.probe import EnvProbe
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.memo import memoized
from pytest_flmigrate.servers import gpu, log_errors, procs
from pytest_flmigrate.servers.answers import ErrorAnswer, with_log_cause
from pytest_flmigrate.steps import benchmark as bench_step
from pytest_flmigrate.steps import import_smoke as smoke_step
from pytest_flmigrate.steps import plugin_tests, registrations
from pytest_flmigrate.steps import serve as serve_step
from pytest_flmigrate.tiny import checkpoints, control_env, controls, drafts, mtp

if TYPE_CHECKING:
    from pytest_flmigrate.e2e.gt import GroundTruth
    from pytest_flmigrate.e2e.phases import ServerRef
    from pytest_flmigrate.run import ModelRun

UNIT_TESTS = "tests/unit_tests"
FUNCTIONAL_TESTS = "tests/functional_tests"
BASELINE_FILE = "unit-baseline.json"


def _stderr(message: str) -> None:
    print(f"flmigrate: {message}", file=sys.stderr, flush=True)


class RuntimeRun:
    def __init__(self, run: ModelRun) -> None:
        self.run = run
        self.say = _stderr  # the suite points this at the terminal
        self.notes: list[str] = []
        self.control_outcome: dict | None = None  # --tiny: summary.json's ``control`` once it was started
        self._control_ref: ServerRef | None = None
        self.phases: dict[str, float] = {}  # seconds spent per phase of steps 9-11 (summary.json's ``phases``)
        self.draft_metrics: dict | None = None  # --tiny of a draft: the pinned server's acceptance counts

    # --- context ------------------------------------------------------------------------------

    @property
    def settings(self):
        return self.run.settings

    @property
    def python(self) -> str:
        return self.settings.vllm_python

    @property
    def plugin_dir(self) -> Path:
        return self.settings.plugin_dir

    @property
    def logs(self) -> Path:
        path = self.run.report_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def tell(self, message: str) -> None:
        self.notes.append(message)
        self.say(message)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the time the block takes to ``phases[phase]`` (synthesis, control, pinned serve, benchmark)."""
        start = time.monotonic()
        try:
            yield
        finally:
            self.phases[phase] = round(self.phases.get(phase, 0.0) + time.monotonic() - start, 2)

    @memoized
    def probe(self) -> EnvProbe:
        scratch = procs.scratch_dir("probe")
        try:
            return probe.probe(self.python, scratch)
        finally:
            procs.remove_scratch(scratch)

    def need(self, *, vllm: bool = True, pytest: bool = False, plugin: bool = True) -> EnvProbe:
        found = self.probe()
        probe.require(found, self.plugin_dir, vllm=vllm, pytest=pytest, plugin=plugin)
        return found

    # --- steps 1, 7, 8: the plugin's tests ----------------------------------------------------

    def _folder(self, folder: str) -> bool:
        return (self.plugin_dir / folder).is_dir()

    @memoized
    def baseline(self) -> plugin_tests.TestRun | None:
        """Step 1: the plugin's unit tests before any change; saved for later step-7-only runs."""
        self.need(pytest=True)
        if not self._folder(UNIT_TESTS):
            return None
        result = plugin_tests.run_folder(
            self.python,
            self.plugin_dir,
            UNIT_TESTS,
            logs=self.logs,
            label="unit-baseline",
            memo=self.tests_memo(UNIT_TESTS),
        )
        result.save(self.logs / BASELINE_FILE)
        return result

    def baseline_for_regression(self) -> plugin_tests.TestRun:
        found = self.baseline.result
        if found is not None:
            return found
        saved = self.logs / BASELINE_FILE
        if saved.exists():
            return plugin_tests.TestRun.load(saved)
        raise FlmigrateError(
            f"no step 1 baseline for {self.run.name} (none this session, no {saved}); "
            f"run step 1 first: pytest --model {self.run.name} -k baseline"
        )

    @memoized
    def regression(self) -> tuple[plugin_tests.TestRun, plugin_tests.Regression] | None:
        """Step 7: the unit tests again, compared with the baseline."""
        self.need(pytest=True)
        if not self._folder(UNIT_TESTS):
            return None
        before = self.baseline_for_regression()
        after = plugin_tests.run_folder(
            self.python,
            self.plugin_dir,
            UNIT_TESTS,
            logs=self.logs,
            label="unit-regression",
            memo=self.tests_memo(UNIT_TESTS),
        )
        return after, plugin_tests.compare(before, after)

    @memoized
    def functional(self) -> plugin_tests.TestRun | None:
        """Step 8: the functional tests; failures are reported, not blocking."""
        self.need(pytest=True)
        if not self._folder(FUNCTIONAL_TESTS):
            return None
        return plugin_tests.run_folder(
            self.python,
            self.plugin_dir,
            FUNCTIONAL_TESTS,
            logs=self.logs,
            label="functional",
            memo=self.tests_memo(FUNCTIONAL_TESTS),
        )

    # --- step 4 import smoke, step 5 resolution -----------------------------------------------

    def env_identity(self) -> dict:
        """What the pinned env is, for the results kept of it (steps/kept.py): vLLM's location and
        version, Python's, as the probe found them."""
        found = self.probe()
        return {"vllm": found.vllm_dir, "vllm_version": found.vllm_version, "python": found.python_version}

    def smoke_memo(self, label: str, request: dict) -> Path:
        """Where a smoke run of ``request`` is kept (steps/import_smoke.py)."""
        return smoke_step.memo_path(self.plugin_dir, self.env_identity(), label, request)

    def tests_memo(self, folder: str) -> Path:
        """Where a run of the plugin's ``folder`` is kept (steps/plugin_tests.py)."""
        return plugin_tests.memo_path(self.plugin_dir, self.env_identity(), folder)

    @memoized
    def import_smoke(self) -> smoke_step.SmokeResult:
        self.need()
        plan = self.run.written_plan()
        modules = [planned.plugin_module for planned in plan.files]
        memo = self.smoke_memo("import-smoke", {"modules": modules})
        result = smoke_step.import_modules(
            self.python, modules, self.logs / "import-smoke.log", memo, unfixed=plan.unfixed
        )
        if result.platform is not None:
            self.tell(smoke_step.platform_fact(result.platform))
        return result

    def expected_architectures(self) -> dict[str, str]:
        """Architecture -> ``module:Class`` that register_model() registers for this model."""
        entries = registrations.registered_entries(self.run.registration().source)
        request = self.run.registration_request()
        return {arch: entries.get(arch, f"{request.plugin_module}:{cls}") for arch, cls in request.architectures}

    @memoized
    def resolution(self) -> smoke_step.SmokeResult:
        self.need()
        expected = self.expected_architectures()
        memo = self.smoke_memo("resolve-smoke", {"architectures": sorted(expected)})
        return smoke_step.resolve_architectures(self.python, expected, self.logs / "resolve-smoke.log", memo)

    # --- --tiny: the synthesized model and the control ------------------------------------------

    @memoized
    def tiny(self) -> checkpoints.TinyModel:
        """--tiny: the tiny model synthesized (in the upstream env) for the unit's architecture."""
        with self.timed("synthesis"):
            model = checkpoints.for_run(
                checkpoints.upstream_python(self.settings.gt_python), self.run, log=self.logs / "tiny-synthesize.log"
            )
        weights = f"weights from {model.weights_from}" if model.synthesized else f"dummy weights: {model.reason}"
        self.tell(f"--tiny: {model.path} (config from {model.config_source['text']}; {weights})")
        return model

    def control_serve_args(self) -> tuple[str, ...]:
        return self.settings.serve_args + self.tiny().serve_args

    @memoized
    def control_alignment(self) -> control_env.Aligned:
        """--tiny: the environment variables that make the control run the pin's code path of the
        model (tiny/control_env.py), and what the pin lacks."""
        config = json.loads((self.tiny().path / "config.json").read_text(encoding="utf-8"))
        workspace = self.run.workspace
        pinned = workspace.pinned()
        aligned = control_env.aligned(
            config, workspace.upstream().package_dir, pinned.vllm.package_dir, str(pinned.version)
        )
        for note in aligned.notes:
            self.tell(f"--tiny: {note}")
        return aligned

    @memoized
    def control_cache(self) -> controls.ControlCache:
        """--tiny: the control's kept outcome and generations (tiny/controls.py)."""
        return controls.control_cache(
            self.tiny(),
            checkpoints.upstream_python(self.settings.gt_python),
            self.control_serve_args(),
            env=self.control_alignment().env,
        )

    def control(self, scratch: Path) -> GroundTruth:
        """--tiny: the upstream env serving the tiny model, not yet started. It serves before the
        pinned env (steps 9-11 wait for it) and is step 11's ground truth."""
        from pytest_flmigrate.e2e.gt import GroundTruth

        tiny = self.tiny()
        settings = dataclasses.replace(
            self.settings,
            gt_python=checkpoints.upstream_python(self.settings.gt_python),
            gt_model=str(tiny.path),
            serve_args=self.control_serve_args(),
        )
        return GroundTruth(settings, log_dir=self.logs, scratch=scratch, env=self.control_alignment().env)

    def check_control(self, ground_truth: GroundTruth) -> None:
        """Whether the control serves: its kept outcome when there is one (replayed, no server
        started), else the control started now. FlmigrateError when it does not serve
        (``control_outcome`` then holds the reason)."""
        kept = self.control_cache().outcome()
        if kept is None:
            self.start_control(ground_truth)
            return
        self.control_outcome = {**kept, **self._alignment_fields(), "replayed": True}
        self.tell(f"--tiny: the control's outcome replayed from {self.control_cache().root}")
        if not kept["served"]:
            raise FlmigrateError(kept["reason"])

    def start_control(self, ground_truth: GroundTruth) -> ServerRef:
        """The control's server, started on first call; records whether it served (``served``, and
        the skip reason when not) here and, when it served or its server exited with an error, in
        the control cache."""
        if self._control_ref is not None:
            return self._control_ref
        try:
            with self.timed("control"):
                served = ground_truth.start()
        except FlmigrateError as exc:
            self.control_outcome = {"served": False, "reason": self.control_unavailable(exc)}
            if controls.exited_with_error(ground_truth.local):
                self.control_cache().save_outcome(False, self.control_outcome["reason"])
            raise
        self.control_outcome = {"served": True, "reason": "", **self._alignment_fields()}
        self.control_cache().save_outcome(True, "")
        self._control_ref = served
        return served

    def _alignment_fields(self) -> dict:
        """summary.json's ``control`` fields for a control served with the pin's code path."""
        aligned = self.control_alignment()
        return {"env": aligned.env, "aligned": list(aligned.notes)} if aligned.env else {}

    def control_unavailable(self, error: FlmigrateError) -> str:
        """The skip reason when the upstream env itself cannot serve the tiny model: a platform fact, or
        something the tiny checkpoint or the upstream env lacks (``checkpoints.CONTROL_GAPS``)."""
        try:
            log = (self.logs / "gt-server.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            log = ""
        cause = log_errors.first_error_line(log) or error.message
        return checkpoints.control_unavailable(self.tiny().arch, self.run.workspace.upstream().version, cause)

    # --- steps 9, 10 ----------------------------------------------------------------------------

    def served_model(self, step: int) -> str:
        if self.settings.tiny:
            return str(self.tiny().path)
        model = self.settings.served_model
        if not model:
            raise FlmigrateError(
                f"step {step} needs weights: pass --served-model (a checkpoint directory or hub id of "
                f"{self.run.name}; the benchmark uses only its config and tokenizer)"
            )
        config = self.run.hf_config() or {}
        named = list(config.get("architectures") or [])
        ours = sorted(self.expected_architectures())
        if not set(named) & set(ours):
            raise FlmigrateError(
                f"--served-model {model}: its config.json names {', '.join(named) or 'no architecture'}, "
                f"none of {', '.join(ours)}; vLLM would not run the migrated class — serve a checkpoint of "
                f"{self.run.name}"
            )
        return model

    def _own_pids(self) -> set[int]:
        pool = self.run.workspace.servers
        pids: set[int] = set()
        for entry in pool.current.values():
            pids.update(procs.group_members(entry.pid))
        return pids

    @memoized
    def gpu(self) -> gpu.GpuReport:
        """9.0 / 10.0: GPU memory and its holders; stopped only with --free-gpus."""
        found = gpu.report(self._own_pids())
        for line in found.lines():
            self.tell(line)
        if found.occupied and not self.settings.free_gpus:
            others = [h for h in found.holders if not h.ours]
            self.tell(
                f"GPUs are occupied by {len(others)} process(es) this run did not start; they are left "
                "alone (pass --free-gpus to stop them first)"
            )
        if self.settings.free_gpus and found.available:
            found = gpu.free(found, self.tell)
        (self.logs / "gpu.txt").write_text("\n".join(found.lines()) + "\n", encoding="utf-8")
        return found

    @memoized
    def benchmark(self) -> bench_step.BenchResult:
        """Step 9: ``vllm bench throughput``; with --tiny the same load on step 10's server (started
        here when step 9 runs first), so a tiny model's steps 9-11 start one pinned engine."""
        self.need()
        model = self.served_model(9)
        self.gpu()
        if self.settings.tiny:
            url = self.server().url
            with self.timed("benchmark"):
                return bench_step.against_server(url, logs=self.logs, task=self.pooling_task())
        pinned = self.run.workspace.pinned.result
        random_lengths = bench_step.uses_random_lengths(pinned.vllm.package_dir if pinned else None)
        return bench_step.run(
            self.python,
            model,
            tp=self.settings.tp,
            random_lengths=random_lengths,
            extra=self.settings.bench_args + self._tiny_args(),
            logs=self.logs,
        )

    def _tiny_args(self) -> tuple[str, ...]:
        """--tiny: what the pinned env's engine adds for the tiny model (a draft's speculative config)."""
        if not self.settings.tiny:
            return ()
        return self.tiny().serve_args

    def draft_not_judged(self, error: FlmigrateError) -> str | None:
        """--tiny of a draft: the one line saying the pin's speculative decoding cannot load it (a
        platform fact, from the pinned server's ``error`` and log: with --tiny, step 9 loads that
        server too); None when the failure is the migration's."""
        if not self.settings.tiny or not self.tiny().draft:
            return None
        try:  # the log's own line first: the error's quotes it cut short, with the log's path
            text = self.server_log().read_text(encoding="utf-8", errors="replace") + "\n" + str(error)
        except OSError:
            text = str(error)
        pinned = str(self.run.workspace.pinned().version)
        return drafts.pin_fact(text, pinned, self.tiny().draft["method"], self.tiny().arch)

    def record_draft_metrics(self, url: str) -> dict:
        """--tiny of a draft: the pinned server's acceptance counts so far (summary.json's ``draft``)."""
        self.draft_metrics = drafts.parse_metrics(serve_step.metrics(url))
        return self.draft_metrics

    def server_spec(self) -> serve_step.ServerSpec:
        return serve_step.ServerSpec(
            python=self.python,
            model=self.served_model(10),
            port=self.run.port,
            tp=self.settings.tp,
            extra=self.settings.serve_args + self._tiny_args(),
            plugin_dir=self.plugin_dir,
        )

    def need_mtp_target(self) -> None:
        """--tiny of an MTP head: the pinned server serves the head inside its target, which the pin
        or the plugin must register; FlmigrateError naming the model to migrate first when neither
        does."""
        tiny = self.tiny() if self.settings.tiny else None
        if tiny is None or tiny.draft.get("method") != mtp.METHOD:
            return
        target = tiny.draft["target"]
        if target in self.run.workspace.pinned().architectures:
            return
        if target in registrations.registered_entries(self.run.registration().source):
            return
        pinned = self.run.workspace.pinned().version
        raise FlmigrateError(
            f"the MTP head {tiny.arch} serves inside {target}, which neither vLLM {pinned} nor the plugin "
            f"registers: migrate it first (pytest --model {tiny.draft['target_model']})"
        )

    @memoized
    def server(self) -> serve_step.Server:
        """Step 10 (and step 11's local side): a healthy local server with the plugin."""
        self.need()
        self.need_mtp_target()
        spec = self.server_spec()
        self.gpu()
        with self.timed("pinned serve"):
            return self.run.workspace.servers.ensure(spec, self.server_log(), self.tell)

    def server_log(self) -> Path:
        """The log of step 10's server."""
        return self.logs / f"server-{self.run.port}.log"

    def platform_fact(self, error: FlmigrateError) -> str | None:
        """Why the pinned server could not start when that is a platform fact (its speculative
        decoding cannot load a --tiny draft, its vLLM does not implement a feature of the model on
        CPU), else None: the failure is the migration's."""
        draft = self.draft_not_judged(error)
        if draft is not None:
            return draft
        line = log_errors.not_on_cpu(f"{error.message}\n{error.detail}")
        if line is None:
            return None
        pinned = self.run.workspace.pinned()
        return f"the pinned vLLM {pinned.version} cannot run {self.run.name} on CPU, a platform fact: {line}"

    @memoized
    def pooling_task(self) -> str | None:
        """The pooling task of the served architecture when the model pools (``embed``,
        ``token_classify``...; step 10 pools instead of chatting, step 11 compares vectors), else
        None. The served architecture: the tiny model's with --tiny, else the checkpoint's."""
        try:
            unit = self.run.unit()
        except FlmigrateError:
            return None  # no unit: step 2 names why; the model is treated as generating
        if self.settings.tiny:
            served = {self.tiny().arch}
        else:
            served = set((self.run.hf_config() or {}).get("architectures") or ())
        from pytest_flmigrate.steps.discover import pooling_task

        entries = [arch for arch in unit.architectures if arch.name in served]
        return pooling_task(entries) if entries else unit.pooling_task

    @memoized
    def pool(self) -> dict:
        """Step 10 of a pooling model: one ``/pooling`` request of its task answered with vectors."""
        task = self.pooling_task()
        assert task is not None, "pool() is for pooling models"
        url = self.server().url
        return self._with_log_cause(lambda: serve_step.pool(url, task))

    @memoized
    def chat(self) -> dict:
        url = self.server().url
        reply = self._with_log_cause(lambda: serve_step.chat(url))
        if not serve_step.answered(reply, tokens_suffice=self.settings.tiny and not self.tiny().synthesized):
            raise FlmigrateError(
                f"the chat request to {self.server().url} returned no text "
                f"(finish_reason {reply['finish_reason']}, {reply['completion_tokens']} tokens)"
            )
        return reply

    def _with_log_cause(self, request: Callable[[], dict]) -> dict:
        """``request()``; a server error answer (HTTP 5xx: vLLM's message says only to see its log)
        fails with the first error line the server logged while answering."""
        log = self.server().log
        before = log_errors.log_size(log)
        try:
            return request()
        except ErrorAnswer as exc:
            if not exc.server_error:
                raise
            raise FlmigrateError(with_log_cause(exc.message, log, before), exc.detail) from None

    def server_evidence(self) -> dict:
        return serve_step.log_evidence(self.server().log)
