"""--tiny: the tiny model synthesized for a migrated model, cached (pure Python here, no torch).

The model is made once by tiny/synthesize.py in the upstream env, its config from the first
source of sources.py that has one, and cached under ``<cache>/tiny/<model>-<upstream
version>-g<generator version>[-<source kind>-<digest of its config files>]/`` (file-locked;
written into a temporary folder and renamed, so a half-made model never counts). Reruns reuse it; a fresh
synthesis of the same inputs gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from pytest_flmigrate import atomic, envs
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index.sources import cache_dir
from pytest_flmigrate.servers.log_errors import Cause
from pytest_flmigrate.tiny import drafts, mtp, sources
from pytest_flmigrate.tiny.sources import ConfigSource
from pytest_flmigrate.tiny.synthesize import GENERATOR_VERSION, STAMP

if TYPE_CHECKING:
    from pytest_flmigrate.run import ModelRun

SYNTHESIZE_SCRIPT = Path(__file__).resolve().parent / "synthesize.py"
SEED = 0
TIMEOUT = 900
#: The synthesis reads nothing from the hub: the config class comes from upstream's code.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@dataclass(frozen=True)
class Gap:
    """A control failure that comes from what --tiny gives upstream, not from the platform: which
    causes it covers, what upstream needs that it lacks (filled from the cause's fields), and the
    way to check the model anyway."""

    covers: Callable[[Cause], bool]
    needs: str
    remedy: str


#: The tiny checkpoint holds the processor tiny/processors.py found for a multimodal architecture,
#: so an upstream server that still cannot load one fails on it; its config holds the config
#: class's defaults and the values inference gives the fields upstream's code reads that they leave
#: absent or None (infer.class_fills), so upstream code reading a field neither values fails on it; a
#: module the upstream env lacks fails the import.
CONTROL_GAPS = (
    Gap(
        lambda cause: cause.processor,
        "an audio or image processor that it cannot load from the tiny checkpoint",
        "pass --served-model",
    ),
    Gap(
        lambda cause: cause.field is not None,
        "the config field {field}, which {config} does not set by default and no role, default or use in "
        "upstream's code values (checkpoints' config.json do)",
        "pass --served-model",
    ),
    Gap(
        lambda cause: cause.module is not None,
        "the module {module}, which its env lacks",
        "install it there or pass a --gt-python that has it",
    ),
)


def control_unavailable(arch: str, upstream_version: str, error_line: str) -> str:
    """Why the control could not serve the tiny model of ``arch``, from its log's first error line:
    a gap of --tiny's checkpoint or of the upstream env (``CONTROL_GAPS``: what upstream needs and
    the way around), else a platform fact."""
    cause = Cause.of(error_line)
    for gap in CONTROL_GAPS:
        if gap.covers(cause):
            needs = gap.needs.format(**dataclasses.asdict(cause))
            return f"--tiny cannot check {arch}: upstream vLLM {upstream_version} needs {needs}; {gap.remedy}. {error_line}"
    return f"upstream vLLM {upstream_version} cannot run {arch} on CPU: {error_line}"


@dataclass(frozen=True)
class TinyModel:
    path: Path
    arch: str
    synthesized: bool  # False: config only, servers load dummy weights
    reason: str  # why the weights are dummy ("" when synthesized)
    parameters: int | None
    config_source: dict = field(default_factory=dict)  # sources.ConfigSource.as_dict()
    weights_from: str = ""  # the class the weights were made with ("" when dummy)
    remote_code: bool = False  # the config is the checkpoint's own code: servers trust it
    draft: dict = field(
        default_factory=dict
    )  # a draft's or MTP head's pair: method, path (in ``path``), target, tokens; {} else
    #: ``field=value (what gave it)`` for each field the config's source left absent or None and the
    #: synthesis set from upstream's code (synthesize.fill_missing)
    filled: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        """summary.json's ``tiny``; its ``config_source`` lists the fields filled by inference."""
        return {
            "path": str(self.path),
            "arch": self.arch,
            "config_source": {**self.config_source, **({"filled": list(self.filled)} if self.filled else {})},
            "weights": "synthesized" if self.synthesized else "dummy",
            "weights_from": self.weights_from,
            "reason": self.reason,
            "parameters": self.parameters,
            **({"draft": {**self.draft, "path": str(self.draft_dir)}} if self.draft else {}),
        }

    @property
    def draft_dir(self) -> Path | None:
        return self.path / self.draft["path"] if self.draft else None

    @property
    def serve_args(self) -> tuple[str, ...]:
        """What both servers add: ``--load-format dummy`` when there are no real weights,
        ``--trust-remote-code`` when the config is the checkpoint's own code, and for a draft's pair
        speculative decoding with the draft (the control's run of it proves upstream serves the
        tiny draft; being lossless, its greedy tokens are the target's own)."""
        dummy = () if self.synthesized else ("--load-format", "dummy")
        trust = ("--trust-remote-code",) if self.remote_code else ()
        return dummy + trust + self.speculative_args

    @property
    def speculative_args(self) -> tuple[str, ...]:
        if not self.draft or self.draft_dir is None:
            return ()
        tokens = self.draft.get("tokens", drafts.NUM_SPECULATIVE_TOKENS)
        return ("--speculative-config", drafts.speculative_config(self.draft["method"], self.draft_dir, tokens))

    @property
    def comparison_skip(self) -> str | None:
        """Why tokens are not compared on this model (None: they are)."""
        if self.synthesized:
            return None
        return f"tokens not compared: the tiny {self.arch} has dummy weights ({self.reason})"


def tiny_dir(model: str, upstream_version: str, cache: Path | None = None, tag: str = "") -> Path:
    base = cache if cache is not None else cache_dir()
    return base / "tiny" / f"{model}-{upstream_version}-g{GENERATOR_VERSION}.{generator_digest()}{tag}"


#: The files whose code decides what a tiny checkpoint holds; the tool-side cache and control code is
#: not, nor drafts.py (how a pair is served and judged; what a pair holds is synthesize.py's).
NOT_GENERATOR = frozenset({"__init__.py", "checkpoints.py", "controls.py", "drafts.py"})


@functools.cache
def generator_digest(package: Path = Path(__file__).resolve().parent) -> str:
    """A digest of the generator's code (the tiny package but its cache and control plumbing): a
    tiny model made by other code (a new processor rule, a fixed shrink) is made again, never
    reused from the cache."""
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        if path.name not in NOT_GENERATOR:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:8]


def load(path: Path) -> TinyModel | None:
    """The tiny model at ``path``, or None when its stamp is missing or unreadable."""
    try:
        stamp = json.loads((path / STAMP).read_text(encoding="utf-8"))
        return TinyModel(
            path,
            stamp["arch"],
            stamp["weights"] == "synthesized",
            stamp["reason"],
            stamp["parameters"],
            {"kind": stamp["config_kind"], "text": stamp["config_source"]},
            stamp["weights_from"],
            bool(stamp["remote_code"]),
            dict(stamp.get("draft") or {}),
            tuple(stamp.get("filled_fields") or ()),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def synthesize(
    python: str,
    model: str,
    upstream_version: str,
    arch: str,
    source: ConfigSource,
    *,
    cache: Path | None = None,
    log: Path | None = None,
    multimodal: bool = False,
    draft_method: str | None = None,
) -> TinyModel:
    """The cached tiny model of ``model`` with its config from ``source``, synthesized first with
    ``python`` (the upstream env's) when absent (with the processor upstream loads when
    ``multimodal``: the architecture is in upstream's multimodal registry); FlmigrateError with
    synthesize.py's one line when it cannot be made. ``draft_method``: ``arch`` is a
    speculative-decoding draft of that method, made as a pair with a tiny target (drafts.py)."""
    # a draft's pair has a folder of its own: a tiny model of the draft alone may be cached already
    target = tiny_dir(model, upstream_version, cache, source.tag() + (f"-pair-{draft_method}" if draft_method else ""))
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_name(target.name + ".lock"))):
        found = _made(target, source)
        if found is not None:
            return found
        with atomic.folder(target) as work:
            _run_synthesize(python, work, arch, source, log, multimodal, draft_method)
            if load(work) is None:
                raise FlmigrateError(f"--tiny: synthesize.py left no {STAMP} for {arch}")
        found = _made(target, source)
        assert found is not None, f"{target}: its stamp was checked before the rename"
        return found


def _run_synthesize(
    python: str,
    out: Path,
    arch: str,
    source: ConfigSource,
    log: Path | None,
    multimodal: bool = False,
    draft_method: str | None = None,
) -> None:
    """synthesize.py into ``out`` with ``python``, its config from ``source``, its output in
    ``log`` (``draft_method``: ``arch`` is a draft of it, made as a pair); FlmigrateError with its
    one line when it fails. A long synthesis says how far along it is."""
    command = [
        python,
        str(SYNTHESIZE_SCRIPT),
        str(out),
        "--arch",
        arch,
        *source.args(),
        "--config-kind",
        source.kind,
        "--seed",
        str(SEED),
        *(["--multimodal"] if multimodal else []),
        *(("--draft-method", draft_method) if draft_method else ()),
    ]
    with tempfile.TemporaryDirectory(prefix="flm-tiny-") as folder:
        path = log if log is not None else Path(folder) / "synthesize.log"
        try:
            finished = envs.run_logged(
                command,
                label="tiny",
                log=path,
                timeout=TIMEOUT,
                what=f"--tiny: synthesizing a tiny {arch}",
                extra_env=OFFLINE,
            )
        except FlmigrateError as exc:
            raise FlmigrateError(
                exc.message if exc.message.startswith("--tiny") else f"--tiny: {exc.message}", exc.detail
            ) from None
        output = path.read_text(encoding="utf-8", errors="replace").split("\n", 1)[-1]  # the command's line dropped
    if finished.returncode != 0:
        raise FlmigrateError(f"--tiny: cannot synthesize a tiny {arch}: {_error_line(output)}", output[-3000:])


def _made(target: Path, source: ConfigSource) -> TinyModel | None:
    """The tiny model at ``target``, reported with ``source`` (the same config files may have come
    from another folder when it was made)."""
    found = load(target)
    return None if found is None else dataclasses.replace(found, config_source=source.as_dict())


def for_run(python: str, run: ModelRun, *, log: Path | None = None) -> TinyModel:
    """The tiny model of a run's model unit: its first architecture that is not an MTP head (a
    draft's made as a pair with a tiny target; an MTP head's, its target's: mtp.py), its config
    from the first source that has one and synthesizes (sources.candidates, in order: a source that
    fails passes to the next; all failing is one line naming each failure)."""
    head = mtp.find_head(run.unit().architectures)
    if head is not None:
        return _mtp_pair(python, run, head.name, log)
    return _first_made(python, run, run, log)


def _first_made(
    python: str, run: ModelRun, config_of: ModelRun, log: Path | None, mtp_fields: tuple[str, ...] = ()
) -> TinyModel:
    """``run``'s tiny model of ``config_of``'s architecture, from the first of its config sources
    that synthesizes. Where ``config_of`` is another model's (an MTP head's target), the fields
    ``run``'s own code reads of that config are filled too, the target's values first (Exaone 4.5's
    head reads the top-level ``vocab_size`` its target reads from ``text_config``)."""
    from pytest_flmigrate.tiny import infer

    arch, method = sources.tiny_arch(config_of), sources.draft_method(config_of)
    multimodal = sources.is_multimodal(config_of, arch)
    own_fills = infer.class_fills(run) if config_of is not run else {}
    failures: list[str] = []
    for kind, make in sources.candidates(config_of):
        try:
            source = make()
            if source is None:
                continue
            source = dataclasses.replace(source, mtp_fields=mtp_fields, fills={**own_fills, **source.fills})
            version = run.workspace.upstream().version
            return synthesize(
                python, run.name, version, arch, source, log=log, multimodal=multimodal, draft_method=method
            )
        except FlmigrateError as exc:
            if kind == sources.TINY_FROM:
                raise  # what the user named, bad or failing: said as it is
            failures.append(exc.message.removeprefix("--tiny: "))
    raise FlmigrateError("--tiny: " + "; then ".join(failures))


def _mtp_pair(python: str, run: ModelRun, head: str, log: Path | None) -> TinyModel:
    """An MTP head's tiny model: its target's, the head given one layer, served with dummy weights
    (mtp.py)."""
    target = mtp.target_of(run, head)
    fields = mtp.layer_fields(run.workspace.upstream().root)
    if not fields:
        raise FlmigrateError(
            f"--tiny: the MTP head {head} serves inside its target, and upstream's {mtp.LAYER_COUNT_FILE} "
            "names no config field that counts its layers"
        )
    made = _first_made(python, run, target, log, fields)
    pair = {
        "method": mtp.METHOD,
        "path": ".",
        "target": made.arch,
        "target_model": target.name,
        "tokens": mtp.NUM_SPECULATIVE_TOKENS,
    }
    return dataclasses.replace(made, arch=head, synthesized=False, reason=mtp.DUMMY_REASON, draft=pair)


def _error_line(output: str) -> str:
    """synthesize.py's ``error: ...`` line, else the last line of a traceback."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
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
