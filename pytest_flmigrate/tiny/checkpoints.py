"""--tiny: the tiny model synthesized for a migrated model, cached (pure Python here, no torch).

The model is made once by tiny/synthesize.py in the upstream env and cached under
``<cache>/tiny/<model>-<upstream version>-g<generator version>/`` (file-locked; written into a
temporary folder and renamed, so a half-made model never counts). Reruns reuse it; a fresh
synthesis of the same inputs gives the same bytes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from pytest_flmigrate import envs
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index.sources import cache_dir
from pytest_flmigrate.servers import procs
from pytest_flmigrate.steps.discover import ModelUnit
from pytest_flmigrate.tiny.synthesize import GENERATOR_VERSION, STAMP

SYNTHESIZE_SCRIPT = Path(__file__).resolve().parent / "synthesize.py"
SEED = 0
TIMEOUT = 900
#: Control failures that come from what --tiny gives upstream, not from the platform: (the failure's
#: error line, what upstream needs that it lacks, the way to check the model anyway). The tiny
#: checkpoint holds the processor tiny/processors.py found for a multimodal architecture, so an
#: upstream server that still cannot load one fails on it; its config holds the config class's
#: defaults, so upstream code reading a field only real checkpoints set fails on it; a module the
#: upstream env lacks fails the import.
CONTROL_GAPS = (
    (
        re.compile(r"HuggingFace processor|feature extractor|image processor|preprocessor_config"),
        "an audio or image processor that it cannot load from the tiny checkpoint",
        "pass --served-model",
    ),
    (
        re.compile(r"AttributeError: '(?P<config>\w+Config)' object has no attribute '(?P<field>\w+)'"),
        "the config field {field}, which {config} does not set by default (checkpoints' config.json do)",
        "pass --served-model",
    ),
    (
        re.compile(r"No module named '(?P<module>[\w.]+)'"),
        "the module {module}, which its env lacks",
        "install it there or pass a --gt-python that has it",
    ),
)


def control_unavailable(arch: str, upstream_version: str, cause: str) -> str:
    """Why the control could not serve the tiny model of ``arch``, from ``cause`` (its log's first
    error line): a gap of --tiny's checkpoint or of the upstream env (``CONTROL_GAPS``: what upstream
    needs and the way around), else a platform fact."""
    for pattern, missing, remedy in CONTROL_GAPS:
        found = pattern.search(cause)
        if found:
            needs = missing.format(**found.groupdict())
            return f"--tiny cannot check {arch}: upstream vLLM {upstream_version} needs {needs}; {remedy}. {cause}"
    return f"upstream vLLM {upstream_version} cannot run {arch} on CPU: {cause}"


@dataclass(frozen=True)
class TinyModel:
    path: Path
    arch: str
    synthesized: bool  # False: config only, servers load dummy weights
    reason: str  # why the weights are dummy ("" when synthesized)
    parameters: int | None

    def as_dict(self) -> dict:
        """summary.json's ``tiny``."""
        return {
            "path": str(self.path),
            "arch": self.arch,
            "weights": "synthesized" if self.synthesized else "dummy",
            "reason": self.reason,
            "parameters": self.parameters,
        }

    @property
    def serve_args(self) -> tuple[str, ...]:
        """What both servers add: ``--load-format dummy`` when there are no real weights."""
        return () if self.synthesized else ("--load-format", "dummy")

    @property
    def comparison_skip(self) -> str | None:
        """Why tokens are not compared on this model (None: they are)."""
        if self.synthesized:
            return None
        return f"tokens not compared: the tiny {self.arch} has dummy weights ({self.reason})"


def tiny_dir(model: str, upstream_version: str, cache: Path | None = None) -> Path:
    return (cache if cache is not None else cache_dir()) / "tiny" / f"{model}-{upstream_version}-g{GENERATOR_VERSION}"


def load(path: Path) -> TinyModel | None:
    """The tiny model at ``path``, or None when its stamp is missing or unreadable."""
    try:
        stamp = json.loads((path / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return TinyModel(path, stamp["arch"], stamp["weights"] == "synthesized", stamp["reason"], stamp["parameters"])


def synthesize(
    python: str,
    model: str,
    upstream_version: str,
    arch: str,
    config_module: str,
    config_class: str,
    *,
    cache: Path | None = None,
    log: Path | None = None,
    multimodal: bool = False,
) -> TinyModel:
    """The cached tiny model of ``model``, synthesized first with ``python`` (the upstream env's)
    when absent (with the processor upstream loads when ``multimodal``: the architecture is in
    upstream's multimodal registry); FlmigrateError with synthesize.py's one line when it cannot be
    made."""
    target = tiny_dir(model, upstream_version, cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_name(target.name + ".lock"))):
        found = load(target)
        if found is not None:
            return found
        shutil.rmtree(target, ignore_errors=True)
        work = target.with_name(f".{target.name}.tmp{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        scratch = procs.scratch_dir("tiny")
        try:
            env = {**envs.vllm_env(scratch), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            command = [
                python,
                str(SYNTHESIZE_SCRIPT),
                str(work),
                "--arch",
                arch,
                "--config-module",
                config_module,
                "--config-class",
                config_class,
                "--seed",
                str(SEED),
                *(["--multimodal"] if multimodal else []),
            ]
            try:
                result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise FlmigrateError(f"--tiny: synthesizing {arch} with {python} failed: {exc}") from None
        finally:
            procs.remove_scratch(scratch)
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}", encoding="utf-8")
        if result.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            raise FlmigrateError(
                f"--tiny: cannot synthesize a tiny {arch}: {_error_line(result.stderr)}", result.stderr[-3000:]
            )
        os.replace(work, target)
        found = load(target)
        if found is None:
            raise FlmigrateError(f"--tiny: synthesize.py left no {STAMP} in {target}")
        return found


def for_unit(python: str, unit: ModelUnit, upstream_version: str, *, log: Path | None = None) -> TinyModel:
    """The tiny model of a model unit: its first architecture that is not an MTP head, its
    config class as upstream defines it."""
    if unit.config is None:
        raise FlmigrateError(f"--tiny: {unit.name} has no config class upstream to shrink; pass --served-model instead")
    arch = next((a for a in unit.architectures if not a.name.endswith("MTP")), unit.architectures[0])
    return synthesize(
        python,
        unit.name,
        upstream_version,
        arch.name,
        unit.config.module,
        unit.config.class_name,
        log=log,
        multimodal=arch.is_multimodal,
    )


def _error_line(stderr: str) -> str:
    """synthesize.py's ``error: ...`` line, else the last line of a traceback."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("error: "):
            return line[len("error: ") :]
    return lines[-1] if lines else "no output"


def upstream_python(gt_python: str | None) -> str:
    """The upstream env that synthesizes and serves the control: --gt-python, else the provisioned
    upstream CPU env; one actionable line when there is neither."""
    if gt_python:
        return gt_python
    python = envs.env_python(envs.upstream_env())
    if python is None:
        raise FlmigrateError(
            f"--tiny needs an upstream env: pass --gt-python PATH or provision one "
            f"({envs.missing_env_reason(envs.upstream_env())})"
        )
    return str(python)
