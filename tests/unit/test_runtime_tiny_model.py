"""The --tiny cache and its errors (tiny/checkpoints.py), with a stand-in for the upstream env's
python that plays synthesize.py's part (the real one runs in tests/runtime/test_tiny.py)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.tiny import checkpoints, infer, mtp, sources
from pytest_flmigrate.tiny.sources import ConfigSource
from pytest_flmigrate.tiny.synthesize import STAMP

# argv: SCRIPT OUT --arch A (--config-module M --config-class C | --config-dir D) --source T --config-kind K
# --seed S; counts its runs in CALLS
FAKE = """#!{python}
import json, sys
from pathlib import Path
from types import SimpleNamespace
args = sys.argv[1:]
out, arch = Path(args[1]), args[args.index("--arch") + 1]
cls = args[args.index("--config-class") + 1] if "--config-class" in args else "FromDir"
source, kind = args[args.index("--source") + 1], args[args.index("--config-kind") + 1]
calls = Path({calls!r})
calls.write_text(str(int(calls.read_text() or 0) + 1) if calls.exists() else "1")
if cls == "Rejecting":
    print("Traceback ...", file=sys.stderr)
    print("error: Rejecting rejects the tiny value num_hidden_layers=2: ValueError: too few", file=sys.stderr)
    sys.exit(2)
if cls == "Crashing":
    print("Traceback (most recent call last):\\n  ...\\nRuntimeError: out of memory", file=sys.stderr)
    sys.exit(1)
out.mkdir(parents=True, exist_ok=True)  # as synthesize.py: the folder may exist (empty)
(out / "config.json").write_text(json.dumps({{"architectures": [arch]}}))
weights = "dummy" if cls == "NoWeights" else "synthesized"
reason = "upstream transformers 5.19.0 has no class " + arch if weights == "dummy" else ""
stamp = {{"arch": arch, "weights": weights, "reason": reason, "parameters": 7, "config_source": source,
         "config_kind": kind, "weights_from": "" if weights == "dummy" else "transformers.X",
         "remote_code": ["configuration_x.py"] if cls == "FromDir" else []}}
(out / {stamp!r}).write_text(json.dumps(stamp))
"""


def upstream_class(name: str) -> ConfigSource:
    return ConfigSource(sources.UPSTREAM, f"upstream's transformers: m.{name}", "m", name)


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
        upstream_class("MistralConfig"),
        cache=cache,
        log=tmp_path / "logs" / "tiny.log",
    )
    assert first.path == checkpoints.tiny_dir("mistral", "0.32.0", cache)
    assert first.path.name == f"mistral-0.32.0-g{checkpoints.GENERATOR_VERSION}.{checkpoints.generator_digest()}"
    assert (first.arch, first.synthesized, first.serve_args, first.comparison_skip) == (
        "Ministral3ForCausalLM",
        True,
        (),
        None,
    )
    assert "--arch Ministral3ForCausalLM" in (tmp_path / "logs" / "tiny.log").read_text()
    again = checkpoints.synthesize(
        str(python), "mistral", "0.32.0", "Ministral3ForCausalLM", upstream_class("MistralConfig"), cache=cache
    )
    assert again == first and calls.read_text() == "1"
    assert not [p for p in first.path.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_dummy_weights_load_dummy_and_skip_the_comparison(fake_python, tmp_path):
    python, _ = fake_python
    tiny = checkpoints.synthesize(
        str(python), "x", "0.32.0", "XForCausalLM", upstream_class("NoWeights"), cache=tmp_path
    )
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
        checkpoints.synthesize(str(python), "x", "0.32.0", "XForCausalLM", upstream_class(config_class), cache=tmp_path)
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
    stamp = {"arch": "A", "weights": "synthesized", "reason": "", "parameters": 1}
    (tmp_path / STAMP).write_text(json.dumps(stamp))
    assert checkpoints.load(tmp_path) is None  # an older generator's stamp lacks the config source: not this model
    stamp |= {"config_source": "c", "config_kind": "inferred", "weights_from": "w", "remote_code": ["c.py"]}
    (tmp_path / STAMP).write_text(json.dumps(stamp))
    tiny = checkpoints.load(tmp_path)
    assert tiny.synthesized and tiny.serve_args == ("--trust-remote-code",)
    assert tiny.as_dict()["config_source"] == {"kind": "inferred", "text": "c"}


def fake_run(cache, monkeypatch, makers):
    monkeypatch.setenv("FLMIGRATE_CACHE", str(cache))
    monkeypatch.setattr(sources, "candidates", lambda run: iter(makers))
    monkeypatch.setattr(sources, "tiny_arch", lambda run: "XForCausalLM")
    monkeypatch.setattr(sources, "is_multimodal", lambda run, arch: False)
    monkeypatch.setattr(sources, "draft_method", lambda run: None)
    workspace = SimpleNamespace(upstream=lambda: SimpleNamespace(version="0.32.0"))
    return SimpleNamespace(name="x", workspace=workspace, unit=lambda: SimpleNamespace(architectures=[]))


def test_a_source_that_fails_passes_to_the_next(fake_python, tmp_path, monkeypatch):
    python, _ = fake_python
    folder = tmp_path / "inferred"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    inferred = ConfigSource(sources.INFERRED, "inferred from x", folder=folder)
    makers = [
        (sources.UPSTREAM, lambda: upstream_class("Rejecting")),
        (sources.NEWER, lambda: None),
        (sources.INFERRED, lambda: inferred),
    ]
    tiny = checkpoints.for_run(str(python), fake_run(tmp_path / "cache", monkeypatch, makers))
    assert tiny.config_source == {"kind": "inferred", "text": "inferred from x"} and tiny.remote_code


def test_every_source_failing_is_one_line_naming_each(fake_python, tmp_path, monkeypatch):
    python, _ = fake_python

    def lacking():
        raise FlmigrateError("--tiny: a config for x inferred from its code lacks k")

    makers = [(sources.UPSTREAM, lambda: upstream_class("Crashing")), (sources.INFERRED, lacking)]
    with pytest.raises(FlmigrateError) as caught:
        checkpoints.for_run(str(python), fake_run(tmp_path / "cache", monkeypatch, makers))
    assert caught.value.message == (
        "--tiny: cannot synthesize a tiny XForCausalLM: RuntimeError: out of memory; then a config for x "
        "inferred from its code lacks k"
    )


def test_a_tiny_from_that_fails_is_said_as_it_is(fake_python, tmp_path, monkeypatch):
    python, _ = fake_python

    def missing():
        raise FlmigrateError("--tiny-from ckpt: no such folder, and not a hub repo id (OWNER/NAME)")

    makers = [(sources.UPSTREAM, lambda: upstream_class("Crashing")), (sources.TINY_FROM, missing)]
    with pytest.raises(FlmigrateError, match=r"^--tiny-from ckpt: no such folder"):
        checkpoints.for_run(str(python), fake_run(tmp_path / "cache", monkeypatch, makers))


def test_a_multimodal_architecture_asks_for_its_processor(tmp_path):
    """synthesize.py gets --multimodal exactly for an architecture of upstream's multimodal registry
    (the processor is made then only, and text models' synthesis imports no vLLM)."""
    argv = tmp_path / "argv"
    script = tmp_path / "python"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\nfrom pathlib import Path\n"
        f"Path({str(argv)!r}).write_text(json.dumps(sys.argv[1:]))\n"
        "out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)\n"
        f"(out / {STAMP!r}).write_text(json.dumps({{'arch': 'A', 'weights': 'synthesized', 'reason': '', "
        "'parameters': 1, 'config_source': 's', 'config_kind': 'upstream', 'weights_from': 'x', "
        "'remote_code': []}))\n"
    )
    script.chmod(0o755)
    for multimodal in (True, False):
        checkpoints.synthesize(
            str(script),
            f"m{multimodal}",
            "0.32.0",
            "MForConditionalGeneration",
            upstream_class("MConfig"),
            cache=tmp_path / "cache",
            multimodal=multimodal,
        )
        assert ("--multimodal" in json.loads(argv.read_text())) is multimodal


def test_a_model_registering_a_multimodal_processor_is_multimodal_outside_the_registry_table(tmp_path):
    """ColQwen3 (a retrieval model with image inputs) is in upstream's pooling table, not the
    multimodal one: its file registering a processor says it needs one."""
    from pytest_flmigrate.index.registries import Architecture

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "colqwen3.py").write_text(
        "@MULTIMODAL_REGISTRY.register_processor(P, info=I)\nclass C: ...\n"
    )
    (tmp_path / "models" / "text.py").write_text("class T: ...\n")

    def run(table: str, file: str) -> SimpleNamespace:
        arch = Architecture("XForRetrieval", "x", "XForRetrieval", table)
        unit = SimpleNamespace(architectures=(arch,), files=(f"models/{file}",))
        return SimpleNamespace(
            unit=lambda: unit, workspace=SimpleNamespace(upstream=lambda: SimpleNamespace(root=tmp_path))
        )

    assert sources.is_multimodal(run("_EMBEDDING_MODELS", "colqwen3.py"), "XForRetrieval")
    assert sources.is_multimodal(run("_MULTIMODAL_MODELS", "text.py"), "XForRetrieval")
    assert not sources.is_multimodal(run("_TEXT_GENERATION_MODELS", "text.py"), "XForRetrieval")


def test_a_tiny_model_made_by_other_generator_code_is_never_reused(tmp_path):
    """The cache folder carries a digest of the generator's code: a changed rule (here a processor
    rule) names another folder; the tool-side cache plumbing does not."""
    package = Path(checkpoints.__file__).parent

    def copy(name: str, file: str = "", text: str = "") -> Path:
        folder = tmp_path / name
        shutil.copytree(package, folder, ignore=shutil.ignore_patterns("__pycache__"))
        if file:
            (folder / file).write_text(text)
        return folder

    assert checkpoints.generator_digest(copy("same")) == checkpoints.generator_digest()
    assert checkpoints.generator_digest(copy("plumbing", "controls.py", "# plumbing\n")) == (
        checkpoints.generator_digest()
    )
    rule = (package / "processors.py").read_text() + "\n# a new rule\n"
    assert checkpoints.generator_digest(copy("rule", "processors.py", rule)) != checkpoints.generator_digest()


def test_a_drafts_pair_has_a_folder_of_its_own(fake_python, tmp_path):
    """A tiny model of the draft alone, made before drafts were pairs, is not taken for the pair."""
    python, calls = fake_python
    cache = tmp_path / "cache"
    args = (str(python), "llama_eagle3", "0.32.0", "Eagle3LlamaForCausalLM", upstream_class("LlamaConfig"))
    alone = checkpoints.synthesize(*args, cache=cache)
    pair = checkpoints.synthesize(*args, cache=cache, draft_method="eagle3")
    assert pair.path == alone.path.with_name(alone.path.name + "-pair-eagle3")
    assert calls.read_text() == "2"


def head_run(cache: Path, monkeypatch, fields: tuple[str, ...]) -> SimpleNamespace:
    monkeypatch.setenv("FLMIGRATE_CACHE", str(cache))
    head = SimpleNamespace(name="Glm4MoeLiteMTPModel")
    target = SimpleNamespace(name="glm4_moe_lite")
    monkeypatch.setattr(mtp, "find_head", lambda archs: head if archs == ["head"] else None)
    monkeypatch.setattr(mtp, "target_of", lambda run, head: target)
    monkeypatch.setattr(mtp, "layer_fields", lambda root: fields)
    monkeypatch.setattr(sources, "candidates", lambda run: iter([(sources.UPSTREAM, lambda: upstream_class("C"))]))
    monkeypatch.setattr(sources, "tiny_arch", lambda run: "Glm4MoeLiteForCausalLM")
    monkeypatch.setattr(sources, "is_multimodal", lambda run, arch: False)
    monkeypatch.setattr(sources, "draft_method", lambda run: None)
    monkeypatch.setattr(infer, "class_fills", lambda run: {})
    workspace = SimpleNamespace(upstream=lambda: SimpleNamespace(version="0.32.0", root=cache))
    return SimpleNamespace(
        name="glm4_moe_lite_mtp", workspace=workspace, unit=lambda: SimpleNamespace(architectures=["head"])
    )


def test_an_mtp_head_is_its_targets_tiny_model_speculating_with_it(fake_python, tmp_path, monkeypatch):
    python, _ = fake_python
    tiny = checkpoints.for_run(str(python), head_run(tmp_path / "cache", monkeypatch, ("num_nextn_predict_layers",)))
    assert tiny.arch == "Glm4MoeLiteMTPModel" and tiny.path.name.endswith("-mtp")
    assert tiny.draft == {
        "method": "mtp",
        "path": ".",
        "target": "Glm4MoeLiteForCausalLM",
        "target_model": "glm4_moe_lite",
        "tokens": 1,
    }
    dummy, flag, spec = tiny.serve_args[:2], tiny.serve_args[-2], tiny.serve_args[-1]
    assert dummy == ("--load-format", "dummy") and flag == "--speculative-config"
    assert json.loads(spec) == {"method": "mtp", "model": str(tiny.path / "."), "num_speculative_tokens": 1}
    assert (
        tiny.comparison_skip
        == f"tokens not compared: the tiny Glm4MoeLiteMTPModel has dummy weights ({mtp.DUMMY_REASON})"
    )


def test_an_mtp_heads_own_reads_of_its_targets_config_are_filled_the_targets_values_first(tmp_path, monkeypatch):
    """Exaone 4.5's head reads the top-level ``vocab_size`` that its target's code reads from
    ``text_config``: the target's config source gets the head's fill too."""
    run = head_run(tmp_path / "cache", monkeypatch, ("num_nextn_predict_layers",))
    head_fills = {"vocab_size": infer.fill(2048, "by its role"), "rope_theta": infer.fill(1.0, "the head's")}
    target_fills = {"rope_theta": infer.fill(10000.0, "the target's")}
    monkeypatch.setattr(infer, "class_fills", lambda of: head_fills if of is run else {})
    target = sources.ConfigSource(sources.UPSTREAM, "upstream's transformers: m.C", "m", "C", fills=target_fills)
    monkeypatch.setattr(sources, "candidates", lambda of: iter([(sources.UPSTREAM, lambda: target)]))
    made: list[ConfigSource] = []

    def synthesize(python, model, version, arch, source, **kwargs):
        made.append(source)
        return checkpoints.TinyModel(path=tmp_path, arch=arch, synthesized=False, reason="", parameters=0)

    monkeypatch.setattr(checkpoints, "synthesize", synthesize)
    checkpoints.for_run("python", run)
    assert made[0].fills == {"vocab_size": head_fills["vocab_size"], "rope_theta": target_fills["rope_theta"]}
    assert made[0].mtp_fields == ("num_nextn_predict_layers",)


def test_an_mtp_head_without_layer_count_fields_upstream_is_one_line(fake_python, tmp_path, monkeypatch):
    python, calls = fake_python
    with pytest.raises(FlmigrateError) as caught:
        checkpoints.for_run(str(python), head_run(tmp_path / "cache", monkeypatch, ()))
    assert caught.value.message == (
        "--tiny: the MTP head Glm4MoeLiteMTPModel serves inside its target, and upstream's "
        "vllm/config/speculative.py names no config field that counts its layers"
    )
    assert not calls.exists()  # nothing synthesized
