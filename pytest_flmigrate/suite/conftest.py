"""Fixtures of the migration suite: one ModelRun per --model, shared by every step."""

from __future__ import annotations

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.session import workspace_of
from pytest_flmigrate.terminal import terminal_say


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "model_run" in metafunc.fixturenames:
        workspace = workspace_of(metafunc.config)
        models = list(workspace.settings.model)
        per_model = getattr(metafunc.module, "model_cases", None)
        if per_model is not None and "case" in metafunc.fixturenames:
            # cases that differ per model (step 6: one test per check and file), paired with it
            pairs = [(model, case) for model in models for case in per_model(workspace.run_for(model))]
            metafunc.parametrize(
                ("model_run", "case"),
                pairs,
                indirect=["model_run"],
                scope="session",
                ids=[f"{model}-{case.id}" for model, case in pairs],
            )
            return
        metafunc.parametrize("model_run", models, indirect=True, scope="session", ids=models)


@pytest.fixture(scope="session")
def model_run(request: pytest.FixtureRequest):
    return workspace_of(request.config).run_for(request.param)


@pytest.fixture
def unit(model_run):
    """Step 2: the upstream model unit with its placeholders resolved."""
    return model_run.unit()


@pytest.fixture
def migrated_files(model_run):
    """Step 4: the config bridge and every copied-then-patched file, written to the plugin (not
    the files of an earlier migration it dropped)."""
    return [result for result in model_run.migration() if result.status != "dropped"]


@pytest.fixture
def registration(model_run):
    """Step 5: register_model() edited for the unit's architectures (and config bridge)."""
    return model_run.registration()


@pytest.fixture
def runtime(model_run, request):
    """Steps 1, 4 smoke, 5 resolution and 7-10: the pinned env's subprocesses for this model."""
    model_run.runtime.say = terminal_say(request.config)
    return model_run.runtime


@pytest.fixture(scope="session")
def server_pool(request):
    """The session's local servers; at session end they stop, unless --keep-servers."""
    pool = workspace_of(request.config).servers
    yield pool
    pool.finish(terminal_say(request.config))


@pytest.fixture(scope="session")
def control(model_run, request, tmp_path_factory):
    """--tiny: the upstream env serving the tiny model (step 11's ground truth), not yet started.
    Whether it serves is known first: replayed from the control cache (tiny/controls.py), else by
    starting it here, before the pinned env serves; it stops at session end. When upstream itself
    cannot serve it, every step that needs it skips with the platform reason (not a migration
    failure)."""
    runtime = model_run.runtime
    runtime.say = terminal_say(request.config)
    ground_truth = runtime.control(tmp_path_factory.mktemp("control-scratch"))
    request.addfinalizer(ground_truth.close)
    try:
        runtime.check_control(ground_truth)
    except FlmigrateError:
        pytest.skip(runtime.control_outcome["reason"])
    return ground_truth


@pytest.fixture(autouse=True)
def control_first(request):
    """--tiny: steps 9-11 run only once the control serves (step 9 asks here; steps 10 and 11
    through ``local_server_url`` and ``gt_server``). Step 9 also needs the pinned server (its load
    goes to step 10's server): where that server cannot start for a platform fact (a feature the
    pin lacks on CPU, a draft its speculative decoding cannot load), each of step 9's tests skips
    with that one line, as steps 10 and 11 do."""
    marker = request.node.get_closest_marker("step")
    if marker and marker.args[0] == 9 and workspace_of(request.config).settings.tiny:
        request.getfixturevalue("control")
        request.getfixturevalue("local_server_url")


@pytest.fixture(scope="session")
def local_server_url(model_run, server_pool, request) -> str:
    """The plugin's own server (step 10) that step 11 compares: its base URL.

    Started on first use (``vllm serve`` of --vllm-python in its own process group, on the
    model's port), or a healthy kept server with the same command and plugin code is reused.
    A server that cannot start raises with its log's tail; one whose vLLM does not implement a
    feature of the model on CPU, or whose speculative decoding cannot load a --tiny draft, skips
    naming that platform fact. Step 11 asks for it only when a local request is due (never in
    --e2e-phase compare or gt).
    """
    if model_run.settings.tiny:
        request.getfixturevalue("control")
    runtime = model_run.runtime
    runtime.say = terminal_say(request.config)
    try:
        return runtime.server().url
    except FlmigrateError as exc:
        fact = runtime.platform_fact(exc)
        if fact is None:
            raise
        pytest.skip(fact)


@pytest.fixture(scope="session")
def gt_server(model_run, request, tmp_path_factory):
    """Step 11: the ground-truth server of --gt-url / --gt-python / --gt-ssh, started on first use
    and stopped at session end if this run started it."""
    from pytest_flmigrate.e2e.gt import GroundTruth

    if model_run.settings.tiny:  # started now if its outcome was replayed and a prompt is not
        return model_run.runtime.start_control(request.getfixturevalue("control"))
    ground_truth = GroundTruth(
        model_run.settings, log_dir=model_run.report_dir / "logs", scratch=tmp_path_factory.mktemp("gt-scratch")
    )
    request.addfinalizer(ground_truth.close)
    return ground_truth.start()


@pytest.fixture(scope="session")
def e2e_runner(model_run):
    """Step 11: runs each prompt through --e2e-phase, saving results under reports/<model>/e2e/
    (with --tiny, GT results the control cache keeps are replayed, and new ones kept there)."""
    from pytest_flmigrate.e2e.phases import Runner

    settings = model_run.settings
    runner = Runner(
        model_run.e2e,
        phase=settings.e2e_phase,
        token_match_count=settings.token_match_count,
        max_tokens=settings.max_tokens,
        replay=(lambda: model_run.runtime.control_cache().store) if settings.tiny else None,
    )
    runner.pool_for(lambda: model_run.runtime.pooling_task())
    return runner
