"""Import smoke in the pinned env (procedure step 4.2C) and architecture resolution after step 5.

``import_modules``: every migrated module is imported by ``--vllm-python``, each in turn; the
first failure raises one line naming the module and the error, the traceback's last frames as
detail. ``resolve_architectures``: vLLM's general plugins are loaded (as ``vllm serve`` does) and
each registered architecture's class is loaded from vLLM's ModelRegistry; it must come from the
plugin module step 5 registered, not from vLLM's own.

Both first load the plugin's own platform plugins (``vllm.platform_plugins`` entry points of
``vllm_fl``) as vLLM would. One that cannot load in that env (the real plugin's needs FlagGems and
its accelerator) is an environment fact, not the port's failure: it is reported with its fix
(``SmokeResult.platform``, :func:`platform_fact`) and left out of vLLM's platform discovery, so
that the modules import on vLLM's own platform, with the plugin's general plugin still loaded.

Both are a function of the plugin's files and the pinned env: with ``memo`` (``memo_path``, see
steps/kept.py) a finished run's report is kept there and a later run with the same inputs replays it
(its log too) instead of starting the pinned env's python again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate import envs
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.layout import PLUGIN_PACKAGE
from pytest_flmigrate.servers import procs
from pytest_flmigrate.steps import kept

TIMEOUT = 900.0
#: Traceback lines kept in a failure message (the last frames and the error).
TRACEBACK_LINES = 12
_MARK = "FLMIGRATE-SMOKE "

_SCRIPT = r"""
import importlib, importlib.metadata as md, json, sys, traceback
MARK = "FLMIGRATE-SMOKE "
PLATFORMS = "vllm.platform_plugins"
request = json.loads(sys.argv[1])
out = {"imports": {}, "architectures": {}, "platform": None}
def emit():
    print(MARK + json.dumps(out), flush=True)
def failure(exc):
    return {"error": "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else ""),
            "traceback": traceback.format_exc()}
def own(entry_point):
    return entry_point.value.split(":")[0].split(".")[0] == request["package"]
for entry_point in md.entry_points(group=PLATFORMS):
    if not own(entry_point):
        continue
    try:
        qualname = entry_point.load()()
        if qualname:
            module, _, name = qualname.rpartition(".")
            getattr(importlib.import_module(module), name)
    except BaseException as exc:
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        out["platform"] = {"entry_point": "%s = %s" % (entry_point.name, entry_point.value), "missing": missing,
                           **failure(exc)}
        break
if out["platform"] is not None:
    # vLLM reads importlib.metadata.entry_points when it first resolves the platform
    discover = md.entry_points
    def entry_points(**params):
        found = discover(**params)
        if params.get("group") == PLATFORMS:
            return md.EntryPoints(tuple(ep for ep in found if not own(ep)))
        return found
    md.entry_points = entry_points
for module in request.get("modules", []):
    try:
        importlib.import_module(module)
        out["imports"][module] = {"ok": True}
    except BaseException as exc:
        out["imports"][module] = {"ok": False, **failure(exc)}
        emit(); raise SystemExit(0)
if request.get("architectures"):
    from vllm.plugins import load_general_plugins
    load_general_plugins()
    from vllm.model_executor.models.registry import ModelRegistry
    for arch in request["architectures"]:
        entry = ModelRegistry.models.get(arch)
        if entry is None:
            out["architectures"][arch] = {"ok": False, "error": "not in vLLM's ModelRegistry after the general plugins loaded", "traceback": ""}
            continue
        registered = ("%s:%s" % (entry.module_name, entry.class_name) if hasattr(entry, "module_name")
                      else "%s:%s" % (entry.model_cls.__module__, entry.model_cls.__qualname__))
        try:
            cls = entry.load_model_cls()
        except BaseException as exc:
            out["architectures"][arch] = {"ok": False, "registered": registered, **failure(exc)}
            continue
        out["architectures"][arch] = {"ok": True, "registered": registered,
                                      "resolved": "%s:%s" % (cls.__module__, cls.__qualname__)}
emit()
"""


@dataclass(frozen=True)
class SmokeResult:
    imports: dict[str, dict]
    architectures: dict[str, dict]
    seconds: float
    log: str
    platform: dict | None = (
        None  # the plugin's platform plugin that cannot load in the env: entry_point, error, missing
    )
    replayed: bool = False  # kept from an earlier run with the same plugin files and env

    def as_dict(self) -> dict:
        strip = lambda d: {k: v for k, v in d.items() if k != "traceback"}  # noqa: E731
        return {
            "imports": {m: strip(r) for m, r in self.imports.items()},
            "architectures": {a: strip(r) for a, r in self.architectures.items()},
            "platform": {**strip(self.platform), "fact": platform_fact(self.platform)} if self.platform else None,
            "seconds": round(self.seconds, 2),
            "log": self.log,
            **({"replayed": True} if self.replayed else {}),
        }


def platform_fact(platform: dict) -> str:
    """One line: the plugin's platform cannot load in this env, what was done instead, and the fix."""
    missing = platform.get("missing")
    fix = f"install {missing.split('.')[0].replace('_', '-')} in that env" if missing else "fix that env"
    return (
        f"environment, not the port: the plugin's platform plugin ({platform['entry_point']}) cannot load in "
        f"the env of --vllm-python ({platform['error']}), so the migrated modules were imported on vLLM's "
        f"own platform; to use the plugin's platform, {fix}, or run on the plugin's hardware"
    )


def memo_path(plugin_dir: Path, env: dict, label: str, request: dict, cache: Path | None = None) -> Path:
    """Where a smoke run of ``request`` is kept (steps/kept.py): the plugin package's files and install
    metadata, ``env`` (what the pinned env is: vLLM's location and version, Python's), the request."""
    inputs = {"label": label, "request": request, "env": env, "files": kept.files(plugin_dir)}
    return kept.path("smoke", inputs, cache)


def _replay(memo: Path, log: Path) -> SmokeResult | None:
    data = kept.load(memo) or {}
    try:
        imports, architectures, seconds, text = data["imports"], data["architectures"], data["seconds"], data["log"]
    except KeyError:
        return None
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(text, encoding="utf-8")
    return SmokeResult(imports, architectures, seconds, str(log), data.get("platform"), replayed=True)


def _run(python: str, request: dict, log: Path, label: str, memo: Path | None = None) -> SmokeResult:
    if memo is not None and (replayed := _replay(memo, log)) is not None:
        return replayed
    finished = envs.run_logged(
        [python, "-c", _SCRIPT, json.dumps(request)],
        label=label,
        log=log,
        timeout=TIMEOUT,
        what=f"the {label} in the pinned env",
    )
    text = log.read_text(encoding="utf-8", errors="replace")
    marked = [line[len(_MARK) :] for line in text.splitlines() if line.startswith(_MARK)]
    if not marked:
        raise FlmigrateError(
            f"the {label} in the pinned env exited {finished.returncode} before reporting (log: {log})",
            procs.tail(log),
        )
    data = json.loads(marked[-1])
    kept.save(memo, {**data, "seconds": finished.seconds, "log": text})
    return SmokeResult(data["imports"], data["architectures"], finished.seconds, str(log), data["platform"])


def _traceback_tail(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-TRACEBACK_LINES:])


def import_modules(
    python: str,
    modules: list[str],
    log: Path,
    memo: Path | None = None,
    unfixed: dict[tuple[str, str], str] | None = None,
) -> SmokeResult:
    """Import each module in the pinned env; raise for the first that fails.

    ``unfixed``: why step 4 left an import unfixed (``MigrationPlan.unfixed``); a failure on such
    an import says it, so the line names the API and what a port by hand needs."""
    result = _run(python, {"package": PLUGIN_PACKAGE, "modules": modules}, log, "import-smoke", memo)
    for module in modules:
        outcome = result.imports.get(module)
        if outcome and not outcome["ok"]:
            why = unfixed_reason(outcome["error"], unfixed or {})
            raise FlmigrateError(
                f"{module} fails to import in the pinned env: {outcome['error']}"
                + (f"; not fixed at step 4: {why}" if why else ""),
                _traceback_tail(outcome["traceback"]),
            )
    return result


_CANNOT_IMPORT = re.compile(r"cannot import name '([\w.]+)' from '([\w.]+)'")
_NO_MODULE = re.compile(r"No module named '([\w.]+)'")


def unfixed_reason(error: str, unfixed: dict[tuple[str, str], str]) -> str | None:
    """Why step 4 left the import an import error names (``cannot import name 'X' from 'm'``,
    ``No module named 'm'``), or None."""
    found = _CANNOT_IMPORT.search(error)
    if found:
        return unfixed.get((found.group(2), found.group(1)))
    found = _NO_MODULE.search(error)
    if found:
        missing = found.group(1)
        return next(
            (why for (module, _), why in unfixed.items() if module == missing or module.startswith(missing + ".")),
            None,
        )
    return None


def resolve_architectures(python: str, expected: dict[str, str], log: Path, memo: Path | None = None) -> SmokeResult:
    """``expected``: architecture -> ``module:Class`` the plugin registered. Raise on any mismatch."""
    result = _run(python, {"package": PLUGIN_PACKAGE, "architectures": sorted(expected)}, log, "resolve-smoke", memo)
    for arch, target in sorted(expected.items()):
        outcome = result.architectures.get(arch, {"ok": False, "error": "not reported", "traceback": ""})
        if not outcome["ok"]:
            raise FlmigrateError(
                f"architecture {arch} does not load after vLLM's general plugins: {outcome['error']}",
                _traceback_tail(outcome.get("traceback", "")),
            )
        if outcome["resolved"] != target:
            raise FlmigrateError(
                f"architecture {arch} resolves to {outcome['resolved']}, not the plugin's {target}: "
                "vLLM's general plugins did not register it (is the plugin's entry point installed?)"
            )
    return result
