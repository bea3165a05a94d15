"""Step 5: register_model() holds exactly one entry per architecture and config, idempotently."""

import pytest

pytestmark = pytest.mark.step(5)


def test_architectures_registered(model_run, registration):
    from pytest_flmigrate.steps import registrations

    request = model_run.registration_request()
    wrong = registrations.registration_mismatches(
        registration.source, request.architectures, request.plugin_module, request.config
    )
    assert not wrong, "; ".join(f"{mismatch.key}: {mismatch.describe()}" for mismatch in wrong)


def test_registered_targets_exist(model_run, registration):
    """Every import of the model's registration and every module:Class it registers exists at run
    time: one that does not would only log a warning when vLLM loads the plugin."""
    missing = model_run.unresolved_registrations()
    assert not missing, "; ".join(m.format() for m in missing)


def test_registration_idempotent(model_run, registration):
    from pytest_flmigrate.steps import register

    again = register.plan_registration(registration.source, model_run.registration_request())
    assert not again.changed, "a second registration would add: " + ", ".join(again.added)


@pytest.mark.runtime
def test_architectures_resolve_to_plugin_classes(runtime, registration):
    """After vLLM's general plugins load in the pinned env, each architecture loads the plugin's class."""
    result = runtime.resolution()
    expected = runtime.expected_architectures()
    resolved = {arch: outcome.get("resolved") for arch, outcome in result.architectures.items()}
    assert resolved == expected
