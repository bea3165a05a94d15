"""Step 4 with P25 on small trees: a model reading a ``vllm.envs`` flag the pin lacks gets the
generated ``vllm_fl/compat/envs.py`` and reads the flag from it; step 6 names P25 for the flag."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from packaging.version import Version

from pytest_flmigrate.autofix import env_flags, planner
from pytest_flmigrate.autofix.backport import Backporter
from pytest_flmigrate.autofix.relocate import Relocator
from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import select_patches
from pytest_flmigrate.review import MigratedFile, ReviewContext, review
from pytest_flmigrate.steps import migrate
from tests.fixtures.plans import plan_for
from tests.fixtures.trees import VLLM_CORE, write

PIN = Version("0.13.0")
MODELS = "vllm/model_executor/models"
ENVS = {
    "pinned": """
        import os
        environment_variables = {"VLLM_CACHE_ROOT": lambda: os.getenv("VLLM_CACHE_ROOT", "/cache")}


        def __getattr__(name):
            return environment_variables[name]()
    """,
    "upstream": """
        import os
        environment_variables = {
            "VLLM_CACHE_ROOT": lambda: os.getenv("VLLM_CACHE_ROOT", "/cache"),
            "VLLM_DCP_Q_REPLICATE": lambda: bool(int(os.getenv("VLLM_DCP_Q_REPLICATE", "0"))),
        }
    """,
}
READER = """
    import vllm.envs as envs


    class Reader:
        replicate = envs.VLLM_DCP_Q_REPLICATE
"""


@pytest.fixture
def fixer(tmp_path) -> planner.Fixer:
    files = {
        side: write(
            tmp_path / side,
            {**VLLM_CORE, "vllm/envs.py": ENVS[side], f"{MODELS}/reader.py": READER, f"{MODELS}/plain.py": "X = 1\n"},
        )
        for side in ENVS
    }
    upstream = Resolver([index_directory(files["upstream"], "vllm", "0.32.0")])
    pinned = Resolver([index_directory(files["pinned"], "vllm", "0.13.0")])
    relocator = Relocator(upstream, pinned)
    return planner.Fixer(upstream, pinned, relocator, Backporter(upstream, pinned, relocator))


def test_a_model_reading_a_flag_the_pin_lacks_gets_the_shim(fixer, tmp_path):
    plan = plan_for(fixer, "reader")
    assert plan.env_flags == {"VLLM_DCP_Q_REPLICATE": False}
    (shim,) = [planned for planned in plan.files if planned.plugin_module == "vllm_fl.compat.envs"]
    assert shim.text == env_flags.shim_text(plan.env_flags) and shim.role == "compat"
    texts = migrate.patched_texts(
        plan, select_patches(None, PIN), SimpleNamespace(version=PIN, transformers_version=Version("4.57.6"))
    )
    assert texts["vllm_fl/models/reader.py"][0].startswith("import vllm_fl.compat.envs as envs\n")
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    results = migrate.write_migration(plan, texts, plugin, tmp_path / "reports", "upstream", False)
    assert {result.target for result in results} == {"vllm_fl/models/reader.py", "vllm_fl/compat/envs.py"}
    assert (plugin / "vllm_fl/compat/envs.py").read_text() == shim.text
    claim = planner.claims(plan_for(fixer, "reader"), fixer, select_patches(None, PIN))
    assert claim("env-flag", "vllm.envs", "VLLM_DCP_Q_REPLICATE") and not claim("env-flag", "vllm.envs", "VLLM_X")


def test_no_shim_without_a_reader_or_without_p25(fixer):
    assert not [f for f in plan_for(fixer, "plain").files if f.plugin_module == "vllm_fl.compat.envs"]
    without = plan_for(fixer, "reader", "P1,P2")
    assert without.env_flags == {} and [f.target for f in without.files] == ["vllm_fl/models/reader.py"]


def review_reader(fixer: planner.Fixer, plugin, patches: str | None) -> list:
    plan = plan_for(fixer, "reader", patches)
    texts = migrate.patched_texts(
        plan, select_patches(patches, PIN), SimpleNamespace(version=PIN, transformers_version=Version("4.57.6"))
    )
    migrate.write_migration(plan, texts, plugin, plugin / "reports", "upstream", False)
    index = fixer.pinned.index_for("vllm.envs")
    assert index is not None
    every = select_patches(None, PIN)
    context = ReviewContext(
        plugin,
        [index],
        [MigratedFile.at(f.target, f.role, f.upstream_module) for f in plan.files],
        catalog={patch.name: patch.id for patch in every},
        claims=planner.claims(plan_for(fixer, "reader"), fixer, every),
    )
    return review(context, ["missing-attributes"])


def test_step_6_names_p25_for_the_flag_and_finds_nothing_once_it_is_applied(fixer, tmp_path):
    (finding,) = review_reader(fixer, tmp_path / "without", "P1,P2")
    assert (finding.symbol, finding.fix) == ("vllm.envs.VLLM_DCP_Q_REPLICATE", "P25")
    assert finding.message == "module vllm.envs of the pin has no VLLM_DCP_Q_REPLICATE"
    assert review_reader(fixer, tmp_path / "with", None) == []
