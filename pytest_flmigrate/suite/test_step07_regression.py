"""Step 7: the unit tests again; new failures versus the step 1 baseline fail the step."""

import pytest

pytestmark = [pytest.mark.step(7), pytest.mark.runtime]


def test_no_new_unit_test_failures(runtime):
    outcome = runtime.regression()
    if outcome is None:
        pytest.skip("the plugin checkout has no tests/unit_tests")
    after, compared = outcome
    runtime.tell(f"step 7 regression: {after.line()}")
    preexisting = f" (pre-existing, not counted: {', '.join(compared.preexisting)})" if compared.preexisting else ""
    if compared.new:
        pytest.fail(
            f"{len(compared.new)} new unit test failure(s) since the step 1 baseline: "
            f"{', '.join(compared.new)}{preexisting}; log: {after.log}",
            pytrace=False,
        )
    if compared.preexisting:
        runtime.tell(f"step 7: failures also in the baseline (not blamed): {', '.join(compared.preexisting)}")
