"""Fixtures of the migration suite: one ModelRun per --model, shared by every step."""

from __future__ import annotations

import pytest

from pytest_flmigrate.plugin import workspace_of


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "model_run" in metafunc.fixturenames:
        models = list(workspace_of(metafunc.config).settings.model)
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
    """Step 4: the config bridge and every copied-then-patched file, written to the plugin."""
    return model_run.migration()


@pytest.fixture
def registration(model_run):
    """Step 5: register_model() edited for the unit's architectures (and config bridge)."""
    return model_run.registration()
