"""The --tiny cache and its errors (tiny/checkpoints.py), with a stand-in for the upstream env's
python that plays synthesize.py's part (the real one runs in tests/runtime/test_tiny.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.tiny import checkpoints
from pytest_flmigrate.tiny.synthesize import STAMP

# argv: SCRIPT OUT --arch A --config-module M --config-class C --seed S; counts its runs in CALLS
FAKE = """#!{python}
import json, sys
from pathlib import Path
args = sys.argv[1:]
out, arch, cls = Path(args[1]), args[args.index("--arch") + 1], args[args.index("--config-class") + 1]
calls = Path({calls!r})
calls.write_text(str(int(calls.read_text() or 0) + 1) if calls.exists() else "1")
if cls == "Rejecting":
    print("Traceback ...", file=sys.stderr)
    print("error: Rejecting rejects the tiny value num_hidden_layers=2: ValueError: too few", file=sys.stderr)
    sys.exit(2)
if cls == "Crashing":
    print("Traceback (most recent call last):\\n  ...\\nRuntimeError: out of memory", file=sys.stderr)
    sys.exit(1)
out.mkdir(parents=True)
(out / "config.json").write_text(json.dumps({{"architectures": [arch]}}))
weights = "dummy" if cls == "NoWeights" else "synthesized"
reason = "upstream transformers 5.19.0 has no class " + arch if weights == "dummy" else ""
(out / {stamp!r}).write_text(json.dumps({{"arch": arch, "weights": weights, "reason": reason, "parameters": 7}}))
"""


@pytest.fixture
def fake_python(tmp_path: Path) -> tuple[Path, Path]:
    calls = tmp_path / "calls"
    script = tmp_path / "python"
    script.write_text(FAKE.format(python=sys.executable, calls=str(calls), stamp=STAMP))
    script.chmod(0o755)
    return script, calls


def test_made_once_then_reused(fake_python, tmp_path):
    python, calls = fake_python
    cache = tmp_path / "cache"
    first = checkpoints.synthesize(
        str(python),
        "mistral",
        "0.32.0",
        "Ministral3ForCausalLM",
        "m",
        "MistralConfig",
        cache=cache,
        log=tmp_path / "logs" / "tiny.log",
    )
    assert first.path == checkpoints.tiny_dir("mistral", "0.32.0", cache)
    assert first.path.name == f"mistral-0.32.0-g{checkpoints.GENERATOR_VERSION}"
    assert (first.arch, first.synthesized, first.serve_args, first.comparison_skip) == (
        "Ministral3ForCausalLM",
        True,
        (),
        None,
    )
    assert "--arch Ministral3ForCausalLM" in (tmp_path / "logs" / "tiny.log").read_text()
    again = checkpoints.synthesize(
        str(python), "mistral", "0.32.0", "Ministral3ForCausalLM", "m", "MistralConfig", cache=cache
    )
    assert again == first and calls.read_text() == "1"
    assert not [p for p in first.path.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_dummy_weights_load_dummy_and_skip_the_comparison(fake_python, tmp_path):
    python, _ = fake_python
    tiny = checkpoints.synthesize(str(python), "x", "0.32.0", "XForCausalLM", "m", "NoWeights", cache=tmp_path)
    assert tiny.serve_args == ("--load-format", "dummy")
    assert tiny.comparison_skip == (
        "tokens not compared: the tiny XForCausalLM has dummy weights "
        "(upstream transformers 5.19.0 has no class XForCausalLM)"
    )
    assert tiny.as_dict()["weights"] == "dummy"


@pytest.mark.parametrize(
    ("config_class", "line"),
    [
        (
            "Rejecting",
            "--tiny: cannot synthesize a tiny XForCausalLM: Rejecting rejects the tiny value "
            "num_hidden_layers=2: ValueError: too few",
        ),
        ("Crashing", "--tiny: cannot synthesize a tiny XForCausalLM: RuntimeError: out of memory"),
    ],
)
def test_failures_are_one_line_and_leave_no_model(fake_python, tmp_path, config_class, line):
    python, _ = fake_python
    with pytest.raises(FlmigrateError) as caught:
        checkpoints.synthesize(str(python), "x", "0.32.0", "XForCausalLM", "m", config_class, cache=tmp_path)
    assert caught.value.message == line
    assert not [path for path in (tmp_path / "tiny").iterdir() if not path.name.endswith(".lock")]


def test_without_an_upstream_env_the_error_names_both_ways(monkeypatch, tmp_path):
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path))
    assert checkpoints.upstream_python("/envs/up/bin/python") == "/envs/up/bin/python"
    with pytest.raises(
        FlmigrateError,
        match=r"^--tiny needs an upstream env: pass --gt-python PATH or provision one "
        r"\(CPU env vllm-[\d.]+-cpu not provisioned",
    ):
        checkpoints.upstream_python(None)


def test_a_stamp_is_what_counts(tmp_path):
    assert checkpoints.load(tmp_path) is None
    (tmp_path / STAMP).write_text(json.dumps({"arch": "A", "weights": "synthesized", "reason": "", "parameters": 1}))
    assert checkpoints.load(tmp_path).synthesized


def test_a_multimodal_architecture_asks_for_its_processor(tmp_path):
    """for_unit passes --multimodal exactly for an architecture of upstream's multimodal registry."""
    from pytest_flmigrate.index.registries import Architecture
    from pytest_flmigrate.steps.discover import ConfigSource

    argv = tmp_path / "argv"
    script = tmp_path / "python"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\nfrom pathlib import Path\n"
        f"Path({str(argv)!r}).write_text(json.dumps(sys.argv[1:]))\n"
        "out = Path(sys.argv[2]); out.mkdir(parents=True)\n"
        f"(out / {STAMP!r}).write_text(json.dumps({{'arch': 'A', 'weights': 'synthesized', 'reason': '', "
        "'parameters': 1}))\n"
    )
    script.chmod(0o755)
    for table, expected in (("_MULTIMODAL_MODELS", True), ("_TEXT_GENERATION_MODELS", False)):
        unit = SimpleNamespace(
            name=f"m{expected}",
            config=ConfigSource("m", "MConfig", "m.configuration_m", "transformers"),
            architectures=[Architecture("MForConditionalGeneration", "m", "MForConditionalGeneration", table)],
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("FLMIGRATE_CACHE", str(tmp_path / "cache"))
            checkpoints.for_unit(str(script), unit, "0.32.0")  # type: ignore[arg-type]
        assert ("--multimodal" in json.loads(argv.read_text())) is expected
