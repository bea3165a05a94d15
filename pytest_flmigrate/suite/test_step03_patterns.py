"""Step 3: nearest existing plugin model and pattern recorded, with the evidence used."""

import pytest

pytestmark = pytest.mark.step(3)


def test_pattern_recorded(model_run):
    decision = model_run.pattern()
    assert decision.pattern in ("wrapper", "full", "hybrid", "multimodal")
    assert decision.evidence
