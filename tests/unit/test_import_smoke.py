"""Step 4's import smoke: a failure on an import step 4 could not fix says why, in its one line."""

from __future__ import annotations

import sys

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.steps.import_smoke import import_modules, unfixed_reason

UNFIXED = {
    ("vllm.utils.gpu_sync_debug", "gpu_sync_allowed"): "uses vllm.envs.VLLM_GPU_SYNC_CHECK, which the pin lacks",
    ("transformers.models.qwen3_asr", "Qwen3ASRProcessor"): "decorated with @auto_docstring; port it by hand",
}


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (
            "ImportError: cannot import name 'gpu_sync_allowed' from 'vllm.utils.gpu_sync_debug' (/x.py)",
            UNFIXED[("vllm.utils.gpu_sync_debug", "gpu_sync_allowed")],
        ),
        (
            "ModuleNotFoundError: No module named 'vllm.utils.gpu_sync_debug'",
            UNFIXED[("vllm.utils.gpu_sync_debug", "gpu_sync_allowed")],
        ),
        (
            "ModuleNotFoundError: No module named 'transformers.models'",
            UNFIXED[("transformers.models.qwen3_asr", "Qwen3ASRProcessor")],
        ),
        ("ImportError: cannot import name 'other' from 'vllm.utils.gpu_sync_debug'", None),
        ("AttributeError: type object 'X' has no attribute 'y'", None),
    ],
)
def test_the_reason_of_the_import_an_error_names(error, why):
    assert unfixed_reason(error, UNFIXED) == why


def test_a_failing_import_says_why_step_4_left_it(tmp_path, monkeypatch):
    package = tmp_path / "smokepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "bad.py").write_text("from vllm.utils.gpu_sync_debug import gpu_sync_allowed\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(FlmigrateError) as caught:
        import_modules(sys.executable, ["smokepkg.bad"], tmp_path / "smoke.log", unfixed=UNFIXED)
    assert caught.value.message.startswith("smokepkg.bad fails to import in the pinned env: ModuleNotFoundError: ")
    assert caught.value.message.endswith(
        "; not fixed at step 4: uses vllm.envs.VLLM_GPU_SYNC_CHECK, which the pin lacks"
    )
    assert "\n" not in caught.value.message
