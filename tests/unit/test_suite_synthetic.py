"""The whole suite (steps 2-5) on small synthetic trees: fast, offline, every bad input."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pytest_flmigrate import manifest
from pytest_flmigrate.index import sources, upstream
from tests.fixtures.trees import MOE_SHIM_PIN_HELPERS, write


@pytest.fixture
def immutable(monkeypatch):
    """Make a file or folder immutable with ``chattr +i`` (cleared after the test); True then.
    Where the file system has no such flag, writing over or into it fails with an injected
    PermissionError in this process (False)."""
    flagged: list[Path] = []

    def make(path: Path) -> bool:
        if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
            flagged.append(path)
            return True
        real_replace, real_mkstemp, real_access = os.replace, tempfile.mkstemp, os.access

        def replace(source, target):
            if Path(target) == path:
                raise PermissionError(errno.EPERM, "Operation not permitted", source, target)
            return real_replace(source, target)

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == path:
                raise PermissionError(errno.EPERM, "Operation not permitted", dir)
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(os, "access", lambda target, mode: Path(target) != path and real_access(target, mode))
        return False

    yield make
    for path in flagged:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def run_args(trees, *extra):
    upstream_dir, pinned_dir = trees
    return ("--upstream", str(upstream_dir), "--pinned", str(pinned_dir), *extra)


def summary(plugin_tree: Path, model: str) -> dict:
    return json.loads((plugin_tree / "reports" / model / "summary.json").read_text())


def test_migrates_model_with_new_sibling_and_config_bridge(flmigrate, plugin_tree, trees):
    result = flmigrate(*run_args(trees, "--model", "tiny"))
    assert result.ret == 0, result.stdout.str()
    model = (plugin_tree / "vllm_fl/models/tiny.py").read_text()
    assert "# A comment upstream wrote, which must survive the migration." in model
    assert "from vllm_fl.models.tiny_vision import TinyVision" in model
    assert "from vllm.model_executor.models.utils import maybe_prefix" in model
    assert "from vllm_fl.configs.tiny import TinyConfig" in model
    assert (plugin_tree / "vllm_fl/models/tiny_vision.py").is_file()
    assert "class TinyConfig(PretrainedConfig)" in (plugin_tree / "vllm_fl/configs/tiny.py").read_text()
    init = (plugin_tree / "vllm_fl/__init__.py").read_text()
    assert '"vllm_fl.models.tiny:TinyForCausalLM"' in init
    assert '_CONFIG_REGISTRY["tiny"] = TinyConfig' in init
    data = summary(plugin_tree, "tiny")
    assert data["placeholders"] == {
        "model_name": "tiny",
        "model_name_lower": "tiny",
        "MODEL_DISPLAY_NAME": "Tiny",
        "ModelClassName": "TinyForCausalLM",
        "ModelClassNames": ["TinyForCausalLM"],
        "model_type": "tiny",
        "ConfigClassName": "TinyConfig",
    }
    assert data["upstream"]["version"] == "9.1.0" and data["pinned"]["version"] == "0.13.0"
    assert data["patches"]["P1"] == 3 and data["patches"]["P2"] == 1
    ran = {number: step["outcome"] for number, step in data["steps"].items() if step["outcome"] != "not run"}
    assert ran == {
        "2": "passed",
        "3": "passed",
        "4": "passed",
        "5": "passed",
        "6": "passed",
        "11": "skipped",
    }  # 11: no GT source
    assert {data["steps"][n]["outcome"] for n in ("1", "7", "8", "9", "10")} == {"not run"}  # runtime: deselected
    assert (plugin_tree / "reports/tiny/report.md").read_text().startswith("# Migration: Tiny")
    assert list((plugin_tree / "reports/tiny/diffs").glob("*.diff"))


def test_model_whose_config_the_pin_knows_gets_no_bridge(flmigrate, plugin_tree, trees):
    result = flmigrate(*run_args(trees, "--model", "plain"))
    assert result.ret == 0, result.stdout.str()
    data = summary(plugin_tree, "plain")
    assert data["bridge"] == {"needed": False, "reason": "model_type 'llama' is known to the pinned transformers"}
    assert not (plugin_tree / "vllm_fl/configs/llama.py").exists()


def test_junit_cases_carry_step_and_model(flmigrate, plugin_tree, trees, tmp_path):
    junit = tmp_path / "junit.xml"
    flmigrate(*run_args(trees, "--model", "tiny", "--junitxml", str(junit)))
    text = junit.read_text()
    assert text.count('<property name="step" value="2" />') == 3
    assert '<property name="step" value="5" />' in text
    cases = ElementTree.parse(junit).getroot().iter("testcase")
    properties = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert properties and all(p.get("model") == "tiny" and p.get("step") for p in properties), properties


def test_k_selects_steps_by_name(flmigrate, trees):
    result = flmigrate(*run_args(trees, "--model", "tiny", "-k", "upstream"))
    outcomes = result.parseoutcomes()  # steps 3-5 pass; the rest is deselected:
    assert outcomes["passed"] == 3 and set(outcomes) == {"passed", "deselected"}, outcomes
    assert outcomes["deselected"] >= 43 + 5  # at least the 43 review tests and 5 E2E prompts


def test_without_model_the_plugin_stays_out_of_the_way(pytester):
    pytester.makepyfile(test_other="def test_other():\n    assert True\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert " flmigrate =" not in result.stdout.str()


def test_unknown_model_fails_step_2_and_blocks_the_rest(flmigrate, plugin_tree, trees):
    result = flmigrate(*run_args(trees, "--model", "tiyn"))
    result.stdout.fnmatch_lines(["*unknown model 'tiyn' in upstream vLLM 9.1.0: closest upstream names: tiny*"])
    steps = summary(plugin_tree, "tiyn")["steps"]
    assert steps["2"]["outcome"] == "failed"
    assert steps["4"] == {**steps["4"], "outcome": "blocked"}
    assert steps["4"]["reason"].startswith("blocked by step 2: unknown model 'tiyn'")
    assert "Traceback" not in result.stdout.str()


def test_an_env_problem_fails_the_steps_that_run_there_and_blocks_no_static_step(flmigrate, plugin_tree, trees):
    """--vllm-python without vLLM: step 4's import smoke and step 5's resolution fail with that one
    line; the review (step 6) still runs, and only the steps that need the env are blocked."""
    args = ("--model", "tiny", "--vllm-python", sys.executable, "-m", "", "-k", "step04 or step05 or step06 or step09")
    flmigrate(*run_args(trees, *args))
    steps = summary(plugin_tree, "tiny")["steps"]
    no_vllm = f"--vllm-python {sys.executable}: no vLLM importable there"
    assert steps["4"]["outcome"] == "failed" and steps["4"]["reason"].startswith(no_vllm)
    assert steps["5"]["outcome"] == "failed" and steps["5"]["reason"].startswith(no_vllm)
    assert steps["6"]["outcome"] == "passed"
    assert steps["9"]["outcome"] == "blocked" and steps["9"]["reason"].startswith(f"blocked by step 5: {no_vllm}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--plugin-dir", "/nonexistent/plugin"), "--plugin-dir /nonexistent/plugin: no such directory*"),
        (("--model", "Qwen3.5"), "--model 'Qwen3.5': expected a model file name*"),
        (("--e2e-mode", "video"), "--e2e-mode 'video': expected one of text, multimodal, all"),
        (("--max-tokens", "8"), "--max-tokens 8 is below --token-match-count 32*"),
        (
            ("--gt-url", "http://127.0.0.1:1", "--gt-python", "/usr/bin/python3"),
            "--gt-url and --gt-python: give one ground-truth source",
        ),
        (("--gt-ssh", "no-at-sign"), "--gt-ssh 'no-at-sign': expected USER@HOST[:PORT]"),
        (("--tiny", "--served-model", "/x"), "--tiny and --served-model: --tiny serves its own model*"),
        (("--patches", ""), "--patches '': no patch id given; name catalog ids*"),
        (("--patches", "P1,P99"), "--patches: unknown patch id(s) P99; known ids: P1, P2,*"),
    ],
)
def test_bad_options_fail_with_one_line(flmigrate, trees, args, message):
    result = flmigrate(*run_args(trees, "--model", "tiny", *args))
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # at option validation, before any step
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()


def test_reports_dir_that_is_a_file_is_refused_before_any_step(flmigrate, plugin_tree, trees):
    (plugin_tree / "reports").write_text("not a folder\n")
    result = flmigrate(*run_args(trees, "--model", "tiny"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --reports-dir {plugin_tree}/reports: {plugin_tree}/reports is a file, not a folder*"]
    )


def test_read_only_checkout_is_refused_before_any_step(flmigrate, plugin_tree, trees, immutable):
    immutable(plugin_tree)
    result = flmigrate(*run_args(trees, "--model", "tiny"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --plugin-dir {plugin_tree}: {plugin_tree} is not writable (a read-only checkout?)*"]
    )


def test_reports_dir_in_a_read_only_folder_is_refused_before_any_step(flmigrate, plugin_tree, trees, immutable):
    (plugin_tree / "reports").mkdir()
    immutable(plugin_tree / "reports")
    result = flmigrate(*run_args(trees, "--model", "tiny"), "--reports-dir", str(plugin_tree / "reports/nested"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --reports-dir {plugin_tree}/reports/nested: {plugin_tree}/reports is not writable*"]
    )


def test_plugin_dir_without_vllm_fl(flmigrate, trees, tmp_path):
    empty = tmp_path / "not-a-plugin"
    empty.mkdir()
    result = flmigrate(*run_args(trees, "--model", "tiny"), plugin_dir=empty)
    result.stderr.fnmatch_lines([f"ERROR: --plugin-dir {empty}: no vllm_fl/__init__.py there*"])


def test_pyproject_settings_apply_and_command_line_wins(flmigrate, plugin_tree, trees):
    upstream_dir, pinned_dir = trees
    (plugin_tree / "pyproject.toml").write_text(
        f'[tool.flmigrate]\nupstream = "{upstream_dir}"\npinned = "{pinned_dir}"\nmodel = ["nope"]\n'
    )
    result = flmigrate("--model", "tiny")
    assert result.ret == 0, result.stdout.str()
    (plugin_tree / "pyproject.toml").write_text('[tool.flmigrate]\nupstrem = "x"\n')
    result = flmigrate("--model", "tiny")
    result.stderr.fnmatch_lines(["ERROR: *pyproject.toml: unknown key(s) in [[]tool.flmigrate]: upstrem*"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('force = "false"', "force = 'false': expected true or false (a TOML boolean, without quotes)"),
        ("keep-servers = 0", "keep_servers = 0: expected true or false*"),
        ("tp = true", "tp = True: expected a whole number"),
        ("model = 5", "model = 5: expected a string or a list of strings"),
    ],
)
def test_pyproject_values_of_the_wrong_toml_type_are_refused(flmigrate, plugin_tree, trees, line, message):
    (plugin_tree / "pyproject.toml").write_text(f"[tool.flmigrate]\n{line}\n")
    result = flmigrate(*run_args(trees, "--model", "tiny"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {plugin_tree}/pyproject.toml: [[]tool.flmigrate] {message}"])


def test_plain_pytest_migrates_the_pyproject_model_and_test_paths_run_as_given(
    pytester, plugin_tree, trees, monkeypatch
):
    upstream_dir, pinned_dir = trees
    (plugin_tree / "pyproject.toml").write_text(
        f'[tool.flmigrate]\nupstream = "{upstream_dir}"\npinned = "{pinned_dir}"\nmodel = ["tiny"]\n'
    )
    (plugin_tree / "tests/own").mkdir()
    (plugin_tree / "tests/own/test_own.py").write_text("def test_own():\n    assert True\n")
    monkeypatch.chdir(plugin_tree)
    # on two xdist workers: they get the model with the options, as if --model were given
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-m", "not runtime", "-n", "2")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*tiny: 2 upstream passed*5 register passed*"])
    assert (plugin_tree / "vllm_fl/models/tiny.py").is_file()
    own = pytester.runpytest_inprocess("-p", "no:cacheprovider", "tests/own")
    own.assert_outcomes(passed=1)
    assert " flmigrate =" not in own.stdout.str()


def test_tiny_from_pyproject_is_checked_like_the_option(flmigrate, plugin_tree, trees):
    upstream_dir, pinned_dir = trees
    (plugin_tree / "pyproject.toml").write_text(
        f'[tool.flmigrate]\nupstream = "{upstream_dir}"\npinned = "{pinned_dir}"\ntiny = true\n'
    )
    result = flmigrate("--model", "tiny", "--gt-url", "http://127.0.0.1:1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --tiny and --gt-url: --tiny serves its own model*"])


def test_malformed_init_fails_step_5_and_keeps_the_file(flmigrate, plugin_tree, trees):
    init = plugin_tree / "vllm_fl/__init__.py"
    init.write_text("def register_model(:\n    pass\n")
    result = flmigrate(*run_args(trees, "--model", "tiny"))
    steps = summary(plugin_tree, "tiny")["steps"]
    assert steps["4"]["outcome"] == "passed" and steps["5"]["outcome"] == "failed"
    assert "vllm_fl/__init__.py" in steps["5"]["reason"]
    assert init.read_text() == "def register_model(:\n    pass\n"
    assert "Traceback" not in result.stdout.str()


def test_missing_register_model_fails_step_5(flmigrate, plugin_tree, trees):
    (plugin_tree / "vllm_fl/__init__.py").write_text("def register():\n    return None\n")
    flmigrate(*run_args(trees, "--model", "tiny"))
    step = summary(plugin_tree, "tiny")["steps"]["5"]
    assert step["outcome"] == "failed" and "register_model" in step["reason"]


def test_missing_upstream_without_network(flmigrate, plugin_tree, tmp_path, monkeypatch, trees):
    default = tmp_path / "vllm-upstream-ref"
    monkeypatch.setattr(upstream, "DEFAULT_UPSTREAM", str(default))
    monkeypatch.setattr(upstream, "VLLM_GIT_URL", "https://127.0.0.1:9/vllm.git")
    monkeypatch.setattr(sources, "NETWORK_PAUSE_SECONDS", 0)
    result = flmigrate("--model", "tiny", "--upstream", str(default), "--pinned", str(trees[1]))
    result.stdout.fnmatch_lines([f"*--upstream {default}: cannot reach the repository after 3 attempts*"])
    assert not default.exists() or not any(default.iterdir())


def test_upstream_directory_that_does_not_exist(flmigrate, plugin_tree, trees):
    flmigrate("--model", "tiny", "--upstream", "/nonexistent/vllm", "--pinned", str(trees[1]))
    step = summary(plugin_tree, "tiny")["steps"]["2"]
    assert step["outcome"] == "failed"
    assert step["reason"].startswith("--upstream /nonexistent/vllm: no such directory")


def migrate_ok(flmigrate, trees):
    result = flmigrate(*run_args(trees, "--model", "tiny"))
    assert result.ret == 0, result.stdout.str()
    return result


def test_hand_edit_survives_a_rerun_as_an_adaptation_patch(flmigrate, plugin_tree, trees):
    migrate_ok(flmigrate, trees)
    model = plugin_tree / "vllm_fl/models/tiny.py"
    edited = model.read_text().replace('"model")', '"model")  # FL: tuned by hand')
    model.write_text(edited)
    migrate_ok(flmigrate, trees)
    assert model.read_text() == edited
    files = {f["path"]: f for f in summary(plugin_tree, "tiny")["files"]}
    assert files["vllm_fl/models/tiny.py"]["status"] == "kept"
    patch = (plugin_tree / "vllm_fl/models/tiny.adaptation.patch").read_text()
    assert '+        self.prefix = maybe_prefix(prefix, "model")  # FL: tuned by hand' in patch
    assert f"made against upstream {trees[0]}@9.1.0" in patch


def test_hand_edit_is_replayed_onto_a_new_upstream(flmigrate, plugin_tree, trees):
    migrate_ok(flmigrate, trees)
    model = plugin_tree / "vllm_fl/models/tiny.py"
    model.write_text(model.read_text().replace('"model")', '"model")  # FL: tuned by hand'))
    upstream_model = trees[0] / "vllm/model_executor/models/tiny.py"
    upstream_model.write_text(
        upstream_model.read_text().replace("# A comment upstream wrote", "# A comment upstream rewrote")
    )
    migrate_ok(flmigrate, trees)
    text = model.read_text()
    assert "# FL: tuned by hand" in text and "# A comment upstream rewrote" in text
    entry = {f["path"]: f for f in summary(plugin_tree, "tiny")["files"]}["vllm_fl/models/tiny.py"]
    assert entry["status"] == "merged" and entry["replayed"]
    assert "replayed hunk" in (plugin_tree / "reports/tiny/report.md").read_text()


def test_conflicting_hand_edit_fails_step_4_and_leaves_the_file(flmigrate, plugin_tree, trees):
    migrate_ok(flmigrate, trees)
    model = plugin_tree / "vllm_fl/models/tiny.py"
    edited = model.read_text().replace("# A comment upstream wrote", "# FL: our own comment")
    model.write_text(edited)
    upstream_model = trees[0] / "vllm/model_executor/models/tiny.py"
    upstream_model.write_text(
        upstream_model.read_text().replace("# A comment upstream wrote", "# Upstream's new comment")
    )
    flmigrate(*run_args(trees, "--model", "tiny"))
    step = summary(plugin_tree, "tiny")["steps"]["4"]
    assert step["outcome"] == "failed"
    assert step["reason"].startswith("hand edit of vllm_fl/models/tiny.py conflicts with the new upstream")
    assert model.read_text() == edited
    conflicted = (plugin_tree / "reports/tiny/conflicts/vllm_fl/models/tiny.py").read_text()
    assert "<<<<<<< hand-edited" in conflicted


def test_hand_made_file_is_refused_and_force_keeps_a_backup(flmigrate, plugin_tree, trees):
    model = plugin_tree / "vllm_fl/models/tiny.py"
    model.write_text("# a port made by hand before flmigrate\n")
    flmigrate(*run_args(trees, "--model", "tiny"))
    step = summary(plugin_tree, "tiny")["steps"]["4"]
    assert step["outcome"] == "failed" and "--force" in step["reason"]
    assert model.read_text() == "# a port made by hand before flmigrate\n"
    assert not (plugin_tree / "vllm_fl/models/tiny_vision.py").exists()

    result = flmigrate(*run_args(trees, "--model", "tiny", "--force"))
    assert result.ret == 0, result.stdout.str()
    entry = {f["path"]: f for f in summary(plugin_tree, "tiny")["files"]}["vllm_fl/models/tiny.py"]
    assert entry["status"] == "forced"
    assert (plugin_tree / entry["backup"]).read_text() == "# a port made by hand before flmigrate\n"
    result.stdout.fnmatch_lines(
        [f"*--force replaced vllm_fl/models/tiny.py; backup in the plugin checkout: {entry['backup']}"]
    )


def test_force_backs_up_the_adaptation_patch_it_deletes(flmigrate, plugin_tree, trees):
    migrate_ok(flmigrate, trees)
    model = plugin_tree / "vllm_fl/models/tiny.py"
    model.write_text(model.read_text().replace('"model")', '"model")  # FL: tuned by hand'))
    migrate_ok(flmigrate, trees)
    patch_file = plugin_tree / "vllm_fl/models/tiny.adaptation.patch"
    patch = patch_file.read_text()
    result = flmigrate(*run_args(trees, "--model", "tiny", "--force"))
    assert result.ret == 0, result.stdout.str()
    entry = {f["path"]: f for f in summary(plugin_tree, "tiny")["files"]}["vllm_fl/models/tiny.py"]
    assert entry["status"] == "forced" and not patch_file.exists()
    assert (plugin_tree / entry["adaptation_backup"]).read_text() == patch
    assert "# FL: tuned by hand" in (plugin_tree / entry["backup"]).read_text()
    result.stdout.fnmatch_lines(
        [
            f"*--force replaced vllm_fl/models/tiny.py; backup in the plugin checkout: {entry['backup']}",
            f"*--force replaced vllm_fl/models/tiny.py; backup in the plugin checkout: {entry['adaptation_backup']}",
        ]
    )
    assert (
        f"  - replaced by --force; backup: `{entry['adaptation_backup']}`"
        in (plugin_tree / "reports/tiny/report.md").read_text()
    )


def plugin_state(plugin_tree: Path) -> dict[str, bytes]:
    """Every file of the checkout outside reports/ (the lock file aside), by path."""
    return {
        str(p.relative_to(plugin_tree)): p.read_bytes()
        for p in plugin_tree.rglob("*")
        if p.is_file() and "reports" not in p.parts and p.name != ".lock"
    }


@pytest.mark.parametrize("fault", ["disk full", "ctrl-c"])
def test_write_error_in_step_4_keeps_nothing_and_forgets_nothing(flmigrate, plugin_tree, trees, monkeypatch, fault):
    before = plugin_state(plugin_tree)
    real_write = manifest.atomic_write

    def fail_at_the_sibling(path, text):
        if path.name == "tiny_vision.py" and manifest.BASES.name not in path.parts:
            if fault == "ctrl-c":
                raise KeyboardInterrupt
            raise manifest.unwritable(path, OSError(errno.ENOSPC, "No space left on device"))
        real_write(path, text)

    with monkeypatch.context() as patched:
        patched.setattr(manifest, "atomic_write", fail_at_the_sibling)
        if fault == "ctrl-c":  # pytester raises the run's KeyboardInterrupt again, here
            with pytest.raises(KeyboardInterrupt):
                flmigrate(*run_args(trees, "--model", "tiny"))
        else:  # tiny.py is written first, then its sibling fails
            flmigrate(*run_args(trees, "--model", "tiny"))
            step = summary(plugin_tree, "tiny")["steps"]["4"]
            assert step["outcome"] == "failed" and step["reason"] == (
                f"cannot write {plugin_tree}/vllm_fl/models/tiny_vision.py: No space left on device; make it and "
                "its folder writable (lsattr shows an immutable file as 'i'; chattr -i clears it); nothing of this "
                "step was kept"
            )
    assert plugin_state(plugin_tree) == before  # no file the manifest would not know
    migrate_ok(flmigrate, trees)
    model = plugin_tree / "vllm_fl/models/tiny.py"
    model.write_text(model.read_text() + "# FL: a hand edit\n")
    migrate_ok(flmigrate, trees)  # the hand edit is known as one, not refused as a hand-made file
    assert {f["path"]: f["status"] for f in summary(plugin_tree, "tiny")["files"]}["vllm_fl/models/tiny.py"] == "kept"


def test_immutable_file_fails_step_4_once_naming_it(flmigrate, plugin_tree, trees, immutable):
    migrate_ok(flmigrate, trees)
    for name in ("tiny.py", "tiny_vision.py"):  # upstream moved: both files are rewritten
        source = trees[0] / "vllm/model_executor/models" / name
        source.write_text("# upstream moved on\n" + source.read_text())
    before = plugin_state(plugin_tree)
    vision = plugin_tree / "vllm_fl/models/tiny_vision.py"
    immutable(vision)
    result = flmigrate(*run_args(trees, "--model", "tiny"))
    step = summary(plugin_tree, "tiny")["steps"]["4"]
    message = f"cannot write {vision}: Operation not permitted; make it and its folder writable"
    assert step["outcome"] == "failed" and step["reason"].startswith(message)
    output = result.stdout.str()
    # The error report shows it once; pytest's short summary repeats each test's first line (in
    # full when CI is set, cut to the terminal's width otherwise), so it is left out of the count.
    report = output.partition("short test summary info")[0]
    assert report.count(message) == 1 and ".tmp" not in output and "Traceback" not in output
    assert plugin_state(plugin_tree) == before  # tiny.py, written before the failure, is put back


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_reports_that_cannot_be_written_late_still_print_the_steps(flmigrate, plugin_tree, trees, immutable, workers):
    migrate_ok(flmigrate, trees)
    folder = plugin_tree / "reports/tiny"
    if not immutable(folder) and workers:
        pytest.skip("no chattr here: an injected PermissionError does not reach xdist workers")
    result = flmigrate(*run_args(trees, "--model", "tiny", *workers))  # xdist: a worker writes the report
    result.stdout.fnmatch_lines(
        [
            "*tiny: 2 upstream passed | 3 patterns passed | 4 migrate passed | 5 register passed*",
            f"  report not written: cannot write {folder}/summary.json: Operation not permitted*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_unreadable_manifest_fails_with_one_line(flmigrate, plugin_tree, trees):
    migrate_ok(flmigrate, trees)
    manifest = plugin_tree / ".flmigrate/manifest.json"
    manifest.write_text("<<<<<<< HEAD\n" + manifest.read_text())
    result = flmigrate(*run_args(trees, "--model", "tiny"))
    steps = summary(plugin_tree, "tiny")["steps"]
    assert steps["3"]["outcome"] == "failed"
    assert steps["3"]["reason"].startswith(f"{manifest}: not a flmigrate manifest")
    assert steps["4"]["outcome"] == "failed" and "Traceback" not in result.stdout.str()


def test_second_run_changes_no_byte(flmigrate, plugin_tree, trees):
    migrate_ok(flmigrate, trees)
    snapshot = {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in plugin_tree.rglob("*")
        if p.is_file() and "reports" not in p.parts
    }
    migrate_ok(flmigrate, trees)
    assert {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in plugin_tree.rglob("*")
        if p.is_file() and "reports" not in p.parts
    } == snapshot


def test_parallel_batch_keeps_each_models_steps_on_one_worker(flmigrate, plugin_tree, trees):
    serial_tree = plugin_tree.parent / "serial"
    shutil.copytree(plugin_tree, serial_tree)
    serial = flmigrate(*run_args(trees, "--model", "tiny", "--model", "plain"), plugin_dir=serial_tree)
    assert serial.ret == 0, serial.stdout.str()
    parallel = flmigrate(*run_args(trees, "--model", "tiny", "--model", "plain", "-n", "2"))
    assert parallel.ret == 0, parallel.stdout.str()
    parallel.stdout.fnmatch_lines(
        ["*tiny: 2 upstream passed*5 register passed*", "*plain: 2 upstream passed*5 register passed*"]
    )
    for model in ("tiny", "plain"):
        ours = summary_without_timing(plugin_tree, model)
        assert ours == summary_without_timing(serial_tree, model)


def summary_without_timing(plugin_tree: Path, model: str) -> dict:
    """summary.json with seconds dropped and the checkout's path replaced, for comparisons."""
    text = (plugin_tree / "reports" / model / "summary.json").read_text().replace(str(plugin_tree), "<plugin>")
    data = json.loads(text)
    for step in data["steps"].values():
        step.pop("seconds")
    return data


def test_steps_not_rerun_keep_their_last_result(flmigrate, plugin_tree, trees):
    migrate_ok(flmigrate, trees)
    result = flmigrate(*run_args(trees, "--model", "tiny", "-k", "register"))
    assert result.ret == 0, result.stdout.str()
    steps = summary(plugin_tree, "tiny")["steps"]
    assert steps["2"]["outcome"] == "passed" and steps["2"]["earlier_run"] is True
    assert "earlier_run" not in steps["5"]


def test_relative_imports_left_fail_step_4(flmigrate, plugin_tree, trees):
    """Without P1 the copied files keep their relative imports: step 4 names each one."""
    result = flmigrate(*run_args(trees, "--model", "tiny", "--patches", "P2", "-k", "relative"))
    result.stdout.fnmatch_lines(["*relative imports left (P1 did not apply): vllm_fl/models/tiny.py:*"])


PINNED_MOE = {
    "vllm/distributed/__init__.py": "def tensor_model_parallel_all_reduce(x):\n    return x\n",
    **MOE_SHIM_PIN_HELPERS,
    "vllm/model_executor/layers/__init__.py": "",
    "vllm/model_executor/layers/fused_moe/__init__.py": "class FusedMoE:\n    def __init__(self, **kwargs):\n        pass\n",
    "vllm/model_executor/layers/linear.py": (
        "class ReplicatedLinear:\n    def __init__(self, *args, **kwargs):\n        pass\n"
        "class UnquantizedLinearMethod:\n    pass\n"
    ),
}


def with_moe(trees, call: str) -> None:
    """The synthetic pin gets a FusedMoE (the shim's calls fit it); upstream's tiny builds its
    experts with ``FusedMoEFactory(<call>)``."""
    write(trees[1], PINNED_MOE)
    model = trees[0] / "vllm/model_executor/models/tiny.py"
    text = model.read_text().replace(
        "from .utils import maybe_prefix\n",
        "from .utils import maybe_prefix\nfrom vllm.model_executor.layers.fused_moe import FusedMoEFactory\n",
    )
    model.write_text(text + f"        self.experts = FusedMoEFactory({call})\n")


def test_a_translation_meeting_a_use_it_does_not_handle_fails_step_4_writing_nothing(flmigrate, plugin_tree, trees):
    with_moe(trees, "8, 2, 64, 128, runner_cls=MyRunner")
    flmigrate(*run_args(trees, "--model", "tiny"))
    step = summary(plugin_tree, "tiny")["steps"]["4"]
    assert step["outcome"] == "failed"
    assert step["reason"].startswith(
        "vllm/model_executor/models/tiny.py:15: FusedMoEFactory(8, 2, 64, 128, runner_cls=MyRunner): runner_cls= "
        "has no spelling on the pin's FusedMoE (P19 fused-moe-factory); port it by hand, nothing was written"
    ), step["reason"]
    assert not (plugin_tree / "vllm_fl/models/tiny.py").exists()
    assert not (plugin_tree / "vllm_fl/compat").exists()


def test_a_translated_use_imports_the_shim_step_4_writes(flmigrate, plugin_tree, trees):
    with_moe(trees, "8, 2, 64, 128, use_grouped_topk=True, num_expert_group=2, topk_group=1, gate=self.gate")
    migrate_ok(flmigrate, trees)
    assert (
        "from vllm_fl.compat.moe_runner import FusedMoEFactory\n"
        in (plugin_tree / "vllm_fl/models/tiny.py").read_text()
    )
    assert (plugin_tree / "vllm_fl/compat/moe_runner.py").is_file()
    assert summary(plugin_tree, "tiny")["patches"]["P19"] == 1
