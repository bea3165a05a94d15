"""An env that holds the plugin, layered over a cached pinned env that it leaves untouched.

The procedure installs the plugin with ``pip install --no-deps -e <plugin>`` into the env that
holds vLLM 0.13.0. Doing that to the provisioned env in the cache would change it for every other
run (and two test trees could not both be "the" plugin). So the tests, the benchmark script and
CI install it into a thin venv of its own:

1. ``<pinned python> -m venv --without-pip DEST`` (the same base interpreter);
2. ``DEST/.../site-packages/_flmigrate_base_env.pth`` holds ``import site; site.addsitedir(<the
   pinned env's site-packages>)``: the pinned env's packages, and their own ``.pth`` files, come
   after DEST's own, read-only;
3. ``DEST/bin/python -m pip install --no-deps -e <plugin>``: pip's real editable install, so the
   plugin's ``vllm.general_plugins`` entry point is registered by its own ``pyproject.toml`` (a
   dist-info with entry_points.txt) and ``vllm_fl`` is imported from the checkout.

``DEST/bin/python`` is then a ``--vllm-python`` that holds vLLM and the plugin, as on a user's box.
Building one takes about 10 s (pip builds the editable wheel with setuptools from the index).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pytest_flmigrate.errors import FlmigrateError

BASE_PTH = "_flmigrate_base_env.pth"
_PATHS = "import json, sysconfig; p = sysconfig.get_paths(); print(json.dumps([p['purelib'], p['platlib']]))"


def _run(command: list[str], what: str, timeout: float = 600) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise FlmigrateError(f"{what} failed (exit {result.returncode})", (result.stdout + result.stderr)[-3000:])
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


def install_plugin(python: str | Path, plugin_dir: Path) -> None:
    """``pip install --no-deps -e plugin_dir`` with ``python`` (the env's own pip, or the base env's)."""
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "-e",
            str(plugin_dir),
        ],
        f"pip install --no-deps -e {plugin_dir}",
    )


def plugin_env(base_python: str | Path, plugin_dir: Path, dest: Path) -> Path:
    """A layered env at ``dest`` with ``plugin_dir`` installed editable; returns its python."""
    python = layered_env(base_python, dest)
    install_plugin(python, plugin_dir)
    return python


if __name__ == "__main__":  # pragma: no cover - a small CLI for scripts
    if len(sys.argv) != 4:
        sys.exit("usage: python -m pytest_flmigrate.envs.plugin_env BASE_PYTHON PLUGIN_DIR DEST")
    print(plugin_env(sys.argv[1], Path(sys.argv[2]).absolute(), Path(sys.argv[3]).absolute()))
