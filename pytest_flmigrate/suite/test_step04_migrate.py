"""Step 4: config bridge (if needed) and copy-then-patch done; applied patches listed."""

import pytest

pytestmark = pytest.mark.step(4)


def test_config_bridge(model_run, migrated_files):
    plan = model_run.plan()
    if plan.bridge is None:
        return
    target = plan.bridge.plugin_module.replace(".", "/") + ".py"
    assert target in {f.target for f in migrated_files}, plan.bridge_reason
    text = (model_run.settings.plugin_dir / target).read_text(encoding="utf-8")
    assert f"class {plan.bridge.class_name}(" in text, f"{target} does not define {plan.bridge.class_name}"
    assert f'"{plan.bridge.model_type}"' in text, f"{target} does not set model_type {plan.bridge.model_type!r}"


def test_files_copied_and_patched(model_run, migrated_files):
    root = model_run.settings.plugin_dir
    for result in migrated_files:
        assert (root / result.target).is_file(), f"{result.target} was not written"
    assert any(f.role == "model" for f in migrated_files)


def test_no_relative_imports_left(model_run, migrated_files):
    """Step 6's relative-imports check, run here too: step 4 must leave none (P1)."""
    from pytest_flmigrate.review import MigratedFile, run_check

    context = model_run.review_context()
    left = [
        f"{finding.file}:{finding.line}"
        for result in migrated_files
        for finding in run_check(context, "relative-imports", MigratedFile.at(result.target, result.role))
    ]
    assert not left, "relative imports left (P1 did not apply): " + ", ".join(left)


@pytest.mark.runtime
def test_migrated_modules_import_in_pinned_env(runtime, migrated_files):
    """4.2C: every migrated module imports in the env of --vllm-python (the error and the
    traceback's last frames are the message)."""
    result = runtime.import_smoke()
    assert result.imports and all(outcome["ok"] for outcome in result.imports.values())
