"""Step 5: register_model() holds exactly one entry per architecture and config, idempotently."""

import pytest

from pytest_flmigrate import register

pytestmark = pytest.mark.step(5)


def test_architectures_registered(model_run, registration):
    entries = register.registered_entries(registration.source)
    request = model_run.registration_request()
    for architecture, class_name in request.architectures:
        assert entries.get(architecture) == f"{request.plugin_module}:{class_name}", (
            f"{architecture} is registered as {entries.get(architecture)!r}"
        )


def test_registration_idempotent(model_run, registration):
    again = register.plan_registration(registration.source, model_run.registration_request())
    assert not again.changed, "a second registration would add: " + ", ".join(again.added)


@pytest.mark.runtime
def test_architectures_resolve_to_plugin_classes(runtime, registration):
    """After vLLM's general plugins load in the pinned env, each architecture loads the plugin's class."""
    result = runtime.resolution()
    expected = runtime.expected_architectures()
    resolved = {arch: outcome.get("resolved") for arch, outcome in result.architectures.items()}
    assert resolved == expected
