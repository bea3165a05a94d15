"""Step 2: upstream tree ready at a known commit; model unit and every placeholder resolved."""

import pytest

pytestmark = pytest.mark.step(2)


def test_upstream_ready(model_run):
    tree = model_run.workspace.upstream()
    assert tree.package_dir.is_dir()
    assert tree.commit or tree.version != "unknown", f"{tree.source}: neither a commit nor a version"


def test_model_unit_found(unit):
    assert unit.files and unit.architectures


def test_placeholders_resolved(unit):
    missing = [key for key, value in unit.placeholders().items() if not value]
    assert not missing, (
        f"unresolved placeholders: {', '.join(missing)} ({unit.evidence.get('model_type', '')}); "
        "pass --served-model with the model's config.json"
    )
