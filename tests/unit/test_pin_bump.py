"""A pin bump on synthetic trees: ``--pinned NEW`` on a migrated model re-migrates it for the new pin.

At the old pin (0.13.0) the model ``tiny`` needs a backported helper (``vllm_fl/compat/``), a config
bridge and P14 (transformers 4 names); the new pin (0.24.0) has the helper, knows the model_type and
runs transformers 5. The bump drops the compat module and the bridge (their registration too), no
longer applies P14, keeps the hand edit, and says why for each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_flmigrate.manifest import Manifest
from tests.fixtures import synthetic
from tests.fixtures.trees import write

NEWOP = "vllm/model_executor/layers/newop.py"
COMPAT = "vllm_fl/compat/model_executor/layers/newop.py"
BRIDGE = "vllm_fl/configs/tiny.py"
MODEL = "vllm_fl/models/tiny.py"
TINY_UPSTREAM = '''
    """Inference-only Tiny model compatible with HuggingFace weights."""
    # A comment upstream wrote, which must survive the migration.
    from transformers import PreTrainedConfig

    from vllm.model_executor.layers.newop import new_op
    from vllm.transformers_utils.configs.tiny import TinyConfig

    from .tiny_vision import TinyVision
    from .utils import maybe_prefix


    class TinyForCausalLM:
        def __init__(self, *, vllm_config, prefix=""):
            self.config: TinyConfig = vllm_config.model_config.hf_config
            assert isinstance(self.config, PreTrainedConfig)
            self.vision = TinyVision()
            self.prefix = maybe_prefix(prefix, "model")
            self.scale = new_op(2)
'''
NEWOP_SOURCE = "def new_op(x):\n    return x * 2\n"


@pytest.fixture
def bump_trees(tmp_path) -> tuple[Path, Path, Path]:
    """(upstream, the old pin 0.13.0, the new pin 0.24.0)."""
    upstream = synthetic.upstream_tree(tmp_path / "upstream")
    write(
        upstream,
        {
            "vllm/model_executor/layers/__init__.py": "",
            NEWOP: NEWOP_SOURCE,
            "vllm/model_executor/models/tiny.py": TINY_UPSTREAM,
        },
    )
    old = synthetic.pinned_tree(tmp_path / "pinned-0.13.0")
    new = synthetic.pinned_tree(tmp_path / "pinned-0.24.0")
    write(
        new,
        {
            "vllm/_version.py": '__version__ = "0.24.0"\n',
            "vllm/model_executor/layers/__init__.py": "",
            NEWOP: NEWOP_SOURCE,
            "vllm/transformers_utils/config.py": '_CONFIG_REGISTRY = LazyConfigDict(tiny="TinyConfig")\n',
            "vllm/transformers_utils/configs/tiny.py": (
                upstream / "vllm/transformers_utils/configs/tiny.py"
            ).read_text(),
            "transformers/__init__.py": """
                __version__ = "5.2.0"
                from .configuration_utils import PreTrainedConfig, PretrainedConfig
                from .models.llama.configuration_llama import LlamaConfig
            """,
            "transformers/configuration_utils.py": """
                class PreTrainedConfig:
                    model_type = ''
                PretrainedConfig = PreTrainedConfig
            """,
        },
    )
    return upstream, old, new


def run(flmigrate, upstream: Path, pinned: Path, *models: str):
    args = [arg for model in models for arg in ("--model", model)]
    return flmigrate("--upstream", str(upstream), "--pinned", str(pinned), *args)


def summary(plugin: Path, model: str = "tiny") -> dict:
    return json.loads((plugin / "reports" / model / "summary.json").read_text())


def test_pin_bump_drops_what_the_new_pin_has_and_keeps_the_hand_edit(flmigrate, plugin_tree, bump_trees):
    upstream, old, new = bump_trees
    first = run(flmigrate, upstream, old, "tiny")
    assert first.ret == 0, first.stdout.str()
    assert (plugin_tree / COMPAT).is_file() and (plugin_tree / BRIDGE).is_file()
    assert summary(plugin_tree)["patches"]["P14"] == 1
    model = plugin_tree / MODEL
    model.write_text(model.read_text().replace('"model")', '"model")  # FL: tuned by hand'))

    bumped = run(flmigrate, upstream, new, "tiny")
    assert bumped.ret == 0, bumped.stdout.str()
    data = summary(plugin_tree)
    ran = {n: s["outcome"] for n, s in data["steps"].items() if n in "23456"}
    assert ran == dict.fromkeys("23456", "passed")
    assert '"model")  # FL: tuned by hand' in model.read_text()
    assert "from vllm.model_executor.layers.newop import new_op" in model.read_text()
    assert not (plugin_tree / COMPAT).exists() and not (plugin_tree / BRIDGE).exists()
    assert not (plugin_tree / "vllm_fl/compat").exists()  # its package markers went with the last module
    files = {f["path"]: f for f in data["files"]}
    assert files[MODEL]["status"] == "merged"
    assert files[MODEL]["dropped_patches"] == {
        "P14": "not needed for this file at vLLM 0.24.0 (transformers 5.2.0)",  # transformers 5 names
        "P16": "not needed for this file at vLLM 0.24.0 (transformers 5.2.0)",  # the backported helper
        "P2": "nothing left for it to rewrite at vLLM 0.24.0",  # the import of the config bridge
    }
    assert files[COMPAT] == {
        **files[COMPAT],
        "status": "dropped",
        "reason": "pinned vLLM 0.24.0 has vllm.model_executor.layers.newop (new_op) (written for pinned vLLM 0.13.0)",
    }
    assert files[BRIDGE]["status"] == "dropped"
    assert files[BRIDGE]["reason"].startswith("no config bridge any more: model_type 'tiny' is known to the pinned")
    # the bridge's registration went with it; the architecture stays
    init = (plugin_tree / "vllm_fl/__init__.py").read_text()
    assert "vllm_fl.configs.tiny" not in init and "_CONFIG_REGISTRY" not in init
    assert '"vllm_fl.models.tiny:TinyForCausalLM"' in init
    assert data["registration"] == [
        "removed from vllm.transformers_utils.config import _CONFIG_REGISTRY",
        "removed from vllm_fl.configs.tiny import TinyConfig",
        'removed _CONFIG_REGISTRY["tiny"] = TinyConfig',
    ]
    manifest = Manifest(plugin_tree)
    assert COMPAT not in manifest.entries and BRIDGE not in manifest.entries
    assert manifest.entries[MODEL]["pinned"] == "0.24.0"
    report = (plugin_tree / "reports/tiny/report.md").read_text()
    assert f"`{COMPAT}` (compat, dropped): pinned vLLM 0.24.0 has" in report
    assert "P14 no longer applied: not needed for this file at vLLM 0.24.0 (transformers 5.2.0)" in report
    bumped.stdout.fnmatch_lines([f"*dropped {COMPAT}: pinned vLLM 0.24.0 has*"])
    # a rerun at the new pin changes nothing
    before = {p: p.read_bytes() for p in plugin_tree.rglob("*") if p.is_file() and "reports" not in p.parts}
    assert run(flmigrate, upstream, new, "tiny").ret == 0
    assert {p: p.read_bytes() for p in plugin_tree.rglob("*") if p.is_file() and "reports" not in p.parts} == before


def test_a_compat_module_another_model_uses_is_kept(flmigrate, plugin_tree, bump_trees):
    upstream, old, new = bump_trees
    assert run(flmigrate, upstream, old, "tiny").ret == 0
    other = plugin_tree / "vllm_fl/models/handmade.py"
    other.write_text("from vllm_fl.compat.model_executor.layers.newop import new_op\n")
    assert run(flmigrate, upstream, new, "tiny").ret == 0
    assert (plugin_tree / COMPAT).is_file()
    assert COMPAT not in {f["path"] for f in summary(plugin_tree)["files"]}


def test_all_migrated_bumps_every_model_the_manifest_holds(flmigrate, plugin_tree, bump_trees):
    upstream, old, new = bump_trees
    assert run(flmigrate, upstream, old, "tiny", "plain").ret == 0
    result = run(flmigrate, upstream, new, "all-migrated")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*plain: 2 upstream passed*", "*tiny: 2 upstream passed*"])
    assert not (plugin_tree / COMPAT).exists()
    assert {entry.get("pinned") for entry in Manifest(plugin_tree).entries.values()} == {"0.24.0"}


def test_all_migrated_with_an_empty_manifest_is_one_line_and_runs_nothing(flmigrate, plugin_tree, bump_trees):
    upstream, _, new = bump_trees
    before = {p: p.read_bytes() for p in plugin_tree.rglob("*") if p.is_file()}
    result = run(flmigrate, upstream, new, "all-migrated")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --model all-migrated: {plugin_tree}/.flmigrate/manifest.json records no migrated model; "
            "migrate one with --model NAME first"
        ]
    )
    assert "Traceback" not in result.stderr.str()
    assert {p: p.read_bytes() for p in plugin_tree.rglob("*") if p.is_file()} == before
