"""An env that holds the plugin, layered over a cached pinned env that it leaves untouched.

The plugin's README installs it with ``pip install --no-build-isolation -e .`` into the env that
holds the pinned vLLM and torch: its build requirements (``setuptools-scm``, in some versions
``torch``) come from that env, not from a build env that pip would fill from the index (and so
download torch again). Doing that to the provisioned env in the cache would change it for every
other run (and two test trees could not both be "the" plugin). So the tests, the benchmark script
and CI install it into a thin venv of its own:

1. ``<pinned python> -m venv --without-pip DEST`` (the same base interpreter);
2. ``DEST/.../site-packages/_flmigrate_base_env.pth`` holds ``import site; site.addsitedir(<the
   pinned env's site-packages>)``: the pinned env's packages, and their own ``.pth`` files, come
   after DEST's own, read-only;
3. the build requirements the checkout names (``[build-system] requires`` of its pyproject.toml,
   PEP 518's ``setuptools`` without one) that the layers lack are installed into DEST;
4. ``DEST/bin/python -m pip install --no-build-isolation --no-deps -e <plugin>``: pip's real
   editable install, so the plugin's entry points are registered by its own metadata (a dist-info
   with entry_points.txt) and ``vllm_fl`` is imported from the checkout.

``DEST/bin/python`` is then a ``--vllm-python`` that holds vLLM and the plugin, as on a user's box.
Building one takes about 10 s. A checkout that cannot be installed is one line naming the cause,
and DEST is removed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from pytest_flmigrate.errors import FlmigrateError

BASE_PTH = "_flmigrate_base_env.pth"
#: PEP 518: what builds a checkout whose pyproject.toml has no ``[build-system]``.
DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0",)
_PATHS = "import json, sysconfig; p = sysconfig.get_paths(); print(json.dumps([p['purelib'], p['platlib']]))"
#: The lines of pip's output that say why it failed, most telling first: an exception the build
#: raised, an error the build printed (indented in pip's output), pip's own error.
_CAUSES = (
    re.compile(r"^\s*((?:[A-Za-z_][\w.]*)?(?:Error|Exception)(?::\s.*)?)\s*$"),
    re.compile(r"^\s+error: (.*)$"),
    re.compile(r"^ERROR: (.*)$"),
)


def _cause(output: str) -> str:
    """The one line of a failed command's output that says why."""
    lines = output.splitlines()
    for pattern in _CAUSES:
        found = [match.group(1) for line in lines if (match := pattern.match(line))]
        if found:
            return found[-1]
    return next((line.strip() for line in reversed(lines) if line.strip()), "no output")


def _run(command: list[str], what: str, timeout: float = 600) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        raise FlmigrateError(f"{what} failed: {_cause(output)}", output[-3000:])
    return result.stdout


def site_dirs(python: str | Path) -> list[str]:
    return list(dict.fromkeys(json.loads(_run([str(python), "-c", _PATHS], f"{python}: reading its site dirs"))))


def layered_env(base_python: str | Path, dest: Path) -> Path:
    """A venv at ``dest`` that sees ``base_python``'s packages; returns its python."""
    base_dirs = site_dirs(base_python)
    _run([str(base_python), "-m", "venv", "--without-pip", str(dest)], f"creating a venv at {dest}")
    python = dest / "bin" / "python"
    own = site_dirs(python)[0]
    lines = "".join(f"import site; site.addsitedir({path!r})\n" for path in base_dirs)
    (Path(own) / BASE_PTH).write_text(lines, encoding="utf-8")
    return python


def build_requirements(plugin_dir: Path) -> list[str]:
    """``[build-system] requires`` of the checkout (PEP 518's default when it declares none)."""
    path = plugin_dir / "pyproject.toml"
    if not path.exists():
        return list(DEFAULT_BUILD_REQUIRES)
    try:
        system = tomllib.loads(path.read_text(encoding="utf-8")).get("build-system")
    except tomllib.TOMLDecodeError as exc:
        raise FlmigrateError(f"{path}: not valid TOML ({exc}); the plugin cannot be installed") from None
    if system is None:
        return list(DEFAULT_BUILD_REQUIRES)
    requires = system.get("requires", [])
    if not (isinstance(requires, list) and all(isinstance(item, str) for item in requires)):
        raise FlmigrateError(f"{path}: [build-system] requires must be a list of strings, not {requires!r}")
    return requires


def install_plugin(python: str | Path, plugin_dir: Path) -> None:
    """The checkout's build requirements, then ``pip install --no-build-isolation --no-deps -e
    plugin_dir``, with ``python`` (the env's own pip, or the base env's)."""
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    requires = build_requirements(plugin_dir)
    if requires:
        _run([*pip, *requires], f"installing the build requirements of {plugin_dir} ({', '.join(requires)})")
    _run(
        [*pip, "--no-build-isolation", "--no-deps", "-e", str(plugin_dir)],
        f"pip install --no-build-isolation --no-deps -e {plugin_dir}",
    )


def plugin_env(base_python: str | Path, plugin_dir: Path, dest: Path) -> Path:
    """A layered env at ``dest`` with ``plugin_dir`` installed editable; returns its python.
    When it cannot be built, ``dest`` is removed (unless it was there before)."""
    existed = dest.exists()
    try:
        python = layered_env(base_python, dest)
        install_plugin(python, plugin_dir)
    except BaseException:
        if not existed:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    return python


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python -m pytest_flmigrate.envs.plugin_env BASE_PYTHON PLUGIN_DIR DEST", file=sys.stderr)
        return 2
    try:
        print(plugin_env(argv[1], Path(argv[2]).absolute(), Path(argv[3]).absolute()))
    except FlmigrateError as exc:
        print(f"plugin_env: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
