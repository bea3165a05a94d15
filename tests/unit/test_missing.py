"""A runtime test whose env or tool is missing skips on a developer's machine and fails under CI=true."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("ci", "outcome"), [(None, "skipped"), ("true", "failed")])
def test_a_missing_env_skips_but_fails_under_ci(pytester, monkeypatch, ci, outcome):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile(
        """
        from tests.fixtures.missing import skip_or_fail

        def test_needs_an_env():
            skip_or_fail("vllm-0.24.0-cpu absent: run scripts/provision-cpu-envs")
        """
    )
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rsf")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*vllm-0.24.0-cpu absent: run scripts/provision-cpu-envs*"])
