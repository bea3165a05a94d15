"""P27: builders of a feature switched off at the pin become what they build with it off."""

from __future__ import annotations

from pytest_flmigrate.patches import p27_switched_off_builders as p27
from tests.patches.conftest import run_patch

NORM = "vllm.model_executor.layers.fusion.mm_input_norm"
COMPAT = "vllm_fl.compat.model_executor.layers.fusion.mm_input_norm"
BACKPORTS = {(NORM, "IdentityInputNorm"): (COMPAT, "IdentityInputNorm")}


def rewrite(source: str, **maps):
    return run_patch(p27, source, backports=maps.get("backports", BACKPORTS))


def test_calls_become_the_switched_off_result_imported_from_its_backport():
    text, count = rewrite(
        f"""\
        import torch
        from {NORM} import build_mm_input_norm
        from vllm.config import VllmConfig


        class Model:
            def __init__(self, vllm_config: VllmConfig):
                self.visual = Vision(input_norm=build_mm_input_norm(vllm_config.model_config))
                self.other = build_mm_input_norm(self.model_config, layout="bchw")
        """
    )
    assert text.splitlines()[1] == f"from {COMPAT} import IdentityInputNorm"
    assert "self.visual = Vision(input_norm=IdentityInputNorm())" in text
    assert "self.other = IdentityInputNorm()" in text
    assert "build_mm_input_norm" not in text
    assert count == 3


def test_a_result_the_file_imports_already_is_not_imported_twice():
    text, count = rewrite(
        f"""\
        from {COMPAT} import IdentityInputNorm
        from {NORM} import build_mm_input_norm, FUSED_LIMIT

        norm = build_mm_input_norm(config)
        """
    )
    assert text.splitlines()[:2] == [f"from {COMPAT} import IdentityInputNorm", f"from {NORM} import FUSED_LIMIT"]
    assert "norm = IdentityInputNorm()" in text and count == 2


def test_without_a_backport_the_result_comes_from_upstreams_module():
    text, _ = rewrite(f"from {NORM} import build_mm_input_norm\nnorm = build_mm_input_norm(config)\n", backports={})
    assert text.splitlines()[0] == f"from {NORM} import IdentityInputNorm"


def test_a_relative_import_in_the_fusion_package_is_translated():
    text, count = run_patch(
        p27,
        "from .mm_input_norm import build_mm_input_norm as norm_for\nx = norm_for(cfg)\n",
        module_name="vllm.model_executor.layers.fusion.other",
        backports=BACKPORTS,
    )
    assert text == f"from {COMPAT} import IdentityInputNorm\nx = IdentityInputNorm()\n" and count == 2


LEFT = {
    "passed on": "factory = build_mm_input_norm\n",
    "subclassed": "class Mine(build_mm_input_norm):\n    pass\n",
    "star arguments": "norm = build_mm_input_norm(*args)\n",
    "a computed argument": "norm = build_mm_input_norm(load_config())\n",
}


def test_uses_other_than_plain_calls_leave_the_file_whole_and_refuse_it_with_the_line():
    for use, line in LEFT.items():
        source = f"from {NORM} import build_mm_input_norm\nnorm = build_mm_input_norm(config)\n{line}"
        assert rewrite(source) == (source, 0), use
        why = p27.refusal(source, "vllm.model_executor.models")
        assert why is not None and why.line == 3 and "build_mm_input_norm" in str(why), use
        assert p27.rewritten_imports(source, "vllm.model_executor.models") == set()
        assert p27.added_imports(source, "vllm.model_executor.models") == set()


def test_step_4_is_told_what_is_rewritten_away_and_what_is_added():
    source = f"from {NORM} import build_mm_input_norm\nnorm = build_mm_input_norm(config)\n"
    package = "vllm.model_executor.models"
    assert p27.rewritten_imports(source, package) == {(NORM, "build_mm_input_norm")}
    assert p27.added_imports(source, package) == {(NORM, "IdentityInputNorm")}
    assert p27.refusal("x = 1\n", package) is None


def test_the_same_name_from_elsewhere_is_not_touched_and_a_rerun_changes_nothing():
    other = "from mylib import build_mm_input_norm\nnorm = build_mm_input_norm(config)\n"
    assert rewrite(other) == (other, 0)
    once, _ = rewrite(f"from {NORM} import build_mm_input_norm\nnorm = build_mm_input_norm(config)\n")
    assert rewrite(once) == (once, 0)


def test_a_context_the_pin_never_arms_becomes_a_null_context():
    text, count = rewrite(
        """\
        import torch
        from vllm.utils.gpu_sync_debug import gpu_sync_allowed


        def forward(x):
            with gpu_sync_allowed(first_only=True):
                return x.item()
        """
    )
    assert text.splitlines()[1] == "from contextlib import nullcontext"
    assert "    with nullcontext():\n" in text and count == 2
