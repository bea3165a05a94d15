"""Step 11: one test per prompt: the local server's first tokens match the ground truth's.

``-k e2e`` runs them all, ``-k "e2e and t3"`` one prompt. Multimodal prompts of a text-only
model are skipped with the reason; without any GT source (and no saved GT result to reuse)
the prompts are skipped, naming the options that provide one.
"""

import pytest

from pytest_flmigrate.e2e.prompts import prompts_for
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.session import workspace_of

pytestmark = [pytest.mark.step(11), pytest.mark.e2e]
VISION_KEYS = ("vision_config", "vision_tower_config", "visual", "mm_vision_tower", "vision_model")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "prompt" in metafunc.fixturenames:
        settings = workspace_of(metafunc.config).settings
        prompts = prompts_for(settings.e2e_prompts, settings.e2e_mode)
        metafunc.parametrize("prompt", prompts, ids=[prompt.id for prompt in prompts])


def text_only(model_run) -> bool:
    """True when the model has no vision input: from step 2's unit, else the served config.json."""
    unit = model_run.unit.result
    if unit is None:
        try:
            config = model_run.hf_config()
        except FlmigrateError:
            config = None
        if config:
            return not any(key in config for key in VISION_KEYS)
        try:
            unit = model_run.unit()
        except FlmigrateError:
            return False  # unknown: send the prompt and let the comparison speak
    return not unit.is_multimodal


def test_e2e(model_run, prompt, e2e_runner, request):
    settings = model_run.settings
    if prompt.kind == "multimodal" and text_only(model_run):
        reason = f"{model_run.name} is a text-only model: multimodal prompt {prompt.id} skipped"
        e2e_runner.skip(prompt, reason)
        pytest.skip(reason)
    if settings.tiny and settings.e2e_phase != "compare":
        request.getfixturevalue("control")  # first: a control that cannot run is the reason to skip
    if settings.tiny and model_run.runtime.tiny().comparison_skip:
        reason = f"{prompt.id}: {model_run.runtime.tiny().comparison_skip}"
        e2e_runner.skip(prompt, reason)
        pytest.skip(reason)
    if settings.tiny and model_run.runtime.tiny().draft:
        e2e_runner.exact = True  # speculating with the draft, the pin must give the target's own tokens
    if e2e_runner.needs("gt", prompt) and not (
        settings.tiny or settings.gt_url or settings.gt_python or settings.gt_ssh
    ):
        from pytest_flmigrate.e2e.gt import NO_SOURCE

        reason = f"{prompt.id}: {NO_SOURCE}"
        e2e_runner.skip(prompt, reason)
        pytest.skip(reason)
    outcome = e2e_runner.run(
        prompt,
        {
            "gt": lambda: request.getfixturevalue("gt_server"),
            "local": lambda: request.getfixturevalue("local_server_url"),
        },
    )
    if settings.tiny and model_run.runtime.tiny().draft and e2e_runner.needs("local", prompt):
        counts = model_run.runtime.record_draft_metrics(request.getfixturevalue("local_server_url"))
        request.node.user_properties.append(("draft", str(counts)))
    summary = outcome.summary()
    request.node.user_properties.append(("e2e", summary["verdict"]))
    if summary.get("diverge_at") is not None:
        request.node.user_properties.append(("diverge_at", str(summary["diverge_at"])))
    if not outcome.passed:
        headline, _, detail = outcome.message().partition("\n")
        raise FlmigrateError(headline, detail)
