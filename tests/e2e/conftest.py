"""Fixtures of the E2E tests: stub OpenAI servers on loopback."""

from __future__ import annotations

import pytest

# Imported here so that they stay loaded across pytester's in-process runs, which drop modules
# first imported inside a run (a re-imported requests fails: "You can only merge into CookieJar").
import pytest_flmigrate.e2e.client  # noqa: F401
import pytest_flmigrate.e2e.gt  # noqa: F401
from tests.e2e.sshd_server import sshd  # noqa: F401 - the real sshd fixture, for the remote tests
from tests.e2e.stub_server import StubOpenAI


@pytest.fixture
def stub():
    """Make running stub servers (closed at the end): ``stub(**options)``."""
    made: list[StubOpenAI] = []

    def make(*, activate: bool = True, **options) -> StubOpenAI:
        server = StubOpenAI(**options)
        made.append(server)
        return server.activate() if activate else server

    yield make
    for server in made:
        server.close()


class LocalServerAt:
    """Test-only pytest plugin: step 11's ``local_server_url`` fixture yields ``url`` instead of
    starting step 10's server. It relies on the fixture's name and value (the contract between
    steps 10 and 11) only, not on how step 10 starts servers."""

    def __init__(self, url: str | None) -> None:
        self.url = url

    @pytest.hookimpl(tryfirst=True)
    def pytest_fixture_setup(self, fixturedef, request):
        if self.url is None or fixturedef.argname != "local_server_url":
            return None
        fixturedef.cached_result = (self.url, fixturedef.cache_key(request), None)
        return self.url


@pytest.fixture
def run_suite(pytester: pytest.Pytester, plugin_tree, trees):
    """``pytest --model ...`` in-process against ``plugin_tree`` and the synthetic trees;
    ``local_url`` stands in for step 10."""
    upstream_dir, pinned_dir = trees

    def run(*args: str, local_url: str | None = None):
        return pytester.runpytest_inprocess(
            "--plugin-dir",
            str(plugin_tree),
            "--reports-dir",
            str(plugin_tree / "reports"),
            "--upstream",
            str(upstream_dir),
            "--pinned",
            str(pinned_dir),
            "-p",
            "no:cacheprovider",
            "-q",
            *args,
            plugins=[LocalServerAt(local_url)],
        )

    return run


def outcomes(result) -> dict[str, int]:
    """passed/failed/skipped/errors of a run (deselected counts depend on the other steps)."""
    parsed = result.parseoutcomes()
    return {key: parsed.get(key, 0) for key in ("passed", "failed", "skipped", "errors")}
