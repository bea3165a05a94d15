"""P25: a ``vllm.envs`` flag the pin lacks, read from the generated ``vllm_fl/compat/envs.py`` at
upstream's default; the flags and their defaults compared from the two trees' ``vllm/envs.py``
(here small ones; the real 0.32/0.13 pair: tests/integration/test_autofix_real.py)."""

from __future__ import annotations

import ast
import importlib
import sys
from textwrap import dedent

import libcst as cst
import pytest

from pytest_flmigrate.autofix import env_flags
from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.patches import p25_env_flags as p25
from tests.fixtures.trees import VLLM_CORE, write
from tests.patches.conftest import patch_context

FLAGS = {"VLLM_DCP_Q_REPLICATE": False, "VLLM_GPU_SYNC_CHECK": None}


def rewrite(source: str, flags: dict | None = None) -> tuple[str, int]:
    context = patch_context(env_flags=FLAGS if flags is None else flags)
    transformer = p25.Transformer(context)
    return cst.parse_module(dedent(source)).visit(transformer).code, transformer.count


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            "import vllm.envs as envs\nx = envs.VLLM_DCP_Q_REPLICATE\n",
            "import vllm_fl.compat.envs as envs\nx = envs.VLLM_DCP_Q_REPLICATE\n",
            id="import-as",
        ),
        pytest.param(
            "from vllm import envs\nif envs.VLLM_GPU_SYNC_CHECK: pass\n",
            "from vllm_fl.compat import envs\nif envs.VLLM_GPU_SYNC_CHECK: pass\n",
            id="from-vllm-import-envs",
        ),
        pytest.param(
            "from vllm import envs as e, version\nx = e.VLLM_GPU_SYNC_CHECK\n",
            "from vllm import version\nfrom vllm_fl.compat import envs as e\nx = e.VLLM_GPU_SYNC_CHECK\n",
            id="alias-split-from-its-neighbour",
        ),
        pytest.param(
            "from vllm.envs import VLLM_CACHE_ROOT, VLLM_DCP_Q_REPLICATE\n",
            "from vllm_fl.compat.envs import VLLM_CACHE_ROOT, VLLM_DCP_Q_REPLICATE\n",
            id="from-envs-import-flag",
        ),
    ],
)
def test_a_file_reading_a_flag_the_pin_lacks_reads_it_from_the_shim(before, after):
    assert rewrite(before) == (after, 1)


@pytest.mark.parametrize(
    ("source", "flags"),
    [
        pytest.param("import vllm.envs as envs\nx = envs.VLLM_CACHE_ROOT\n", None, id="only-flags-the-pin-has"),
        pytest.param("import vllm.envs as envs\nx = envs.VLLM_DCP_Q_REPLICATE\n", {}, id="no-missing-flags"),
        pytest.param("envs = object()\nx = envs.VLLM_DCP_Q_REPLICATE\n", None, id="another-envs"),
        pytest.param("import vllm.envs\nx = vllm.envs.VLLM_CACHE_ROOT\n", None, id="unaliased-import"),
    ],
)
def test_a_file_reading_no_missing_flag_is_left_alone(source, flags):
    assert rewrite(source, flags) == (dedent(source), 0)
    assert not p25.relevant("x = 1\n", patch_context(env_flags=FLAGS))


@pytest.mark.parametrize(
    ("getter", "default"),
    [
        ("lambda: bool(int(os.getenv('F', '0')))", False),
        ("lambda: os.getenv('F', '0').strip().lower() in ('1', 'true')", False),
        ("lambda: {'1': True, '0': False}.get(os.getenv('F', '').strip())", None),
        ("lambda: int(os.environ.get('F', '600'))", 600),
        ("lambda: float(os.environ.get('F', '30'))", 30.0),
        ("lambda: os.getenv('F', None)", None),
        ("lambda: os.getenv('F', '0') != '0' or not True", False),
        ("env_with_choices('F', None, ['warn', 'error'])", None),
        ("env_with_choices('F', 'cuda', ['cuda', 'triton'], case_sensitive=False)", "cuda"),
    ],
)
def test_upstreams_default_is_read_statically(getter, default):
    assert env_flags.default_of(ast.parse(getter, mode="eval").body) == default


@pytest.mark.parametrize(
    "getter",
    [
        "lambda: int(os.getenv('F', str(max(1, os.cpu_count() or 1))))",  # the machine's
        "lambda: maybe_convert_bool(os.getenv('F'))",  # a helper of upstream's
        "use_mega_aot_artifact",  # a function
        "lambda: os.getenv('F').strip()",  # fails upstream too: no default
    ],
)
def test_a_default_the_tool_cannot_know_is_refused(getter):
    with pytest.raises(env_flags.Unknown):
        env_flags.default_of(ast.parse(getter, mode="eval").body)


PINNED_ENVS = """
    import os
    environment_variables = {
        "VLLM_CACHE_ROOT": lambda: os.getenv("VLLM_CACHE_ROOT", "/cache"),
    }
"""
UPSTREAM_ENVS = """
    import os
    from typing import Any, Callable
    environment_variables: dict[str, Callable[[], Any]] = {
        "VLLM_CACHE_ROOT": lambda: os.getenv("VLLM_CACHE_ROOT", "/other"),
        "VLLM_DCP_Q_REPLICATE": lambda: bool(int(os.getenv("VLLM_DCP_Q_REPLICATE", "0"))),
        "VLLM_WORKERS": lambda: int(os.getenv("VLLM_WORKERS", str(os.cpu_count()))),
        "VLLM_GPU_SYNC_CHECK": env_with_choices("VLLM_GPU_SYNC_CHECK", None, ["warn", "error"]),
    }
"""


def test_the_missing_flags_come_from_comparing_the_trees(tmp_path):
    upstream = write(tmp_path / "upstream", {**VLLM_CORE, "vllm/envs.py": UPSTREAM_ENVS})
    pinned = write(tmp_path / "pinned", {**VLLM_CORE, "vllm/envs.py": PINNED_ENVS})
    found = env_flags.missing_flags(
        Resolver([index_directory(upstream, "vllm", "0.32.0")]), Resolver([index_directory(pinned, "vllm", "0.13.0")])
    )
    assert found == FLAGS  # the pin's own flag is not taken, the machine-dependent one is left out
    assert list(found) == ["VLLM_DCP_Q_REPLICATE", "VLLM_GPU_SYNC_CHECK"]  # upstream's order


def test_the_shim_serves_the_pins_flags_and_upstreams_defaults(tmp_path, monkeypatch):
    write(
        tmp_path,
        {
            "vllm/__init__.py": "",
            "vllm/envs.py": """
                def __getattr__(name):
                    if name == "VLLM_CACHE_ROOT":
                        return "/pinned-cache"
                    raise AttributeError(f"module 'vllm.envs' has no attribute {name!r}")
            """,
            "vllm_fl/__init__.py": "",
            "vllm_fl/compat/__init__.py": "",
            "vllm_fl/compat/envs.py": env_flags.shim_text(FLAGS),
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("vllm", "vllm.envs", "vllm_fl", "vllm_fl.compat", "vllm_fl.compat.envs"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    shim = importlib.import_module("vllm_fl.compat.envs")
    assert (shim.VLLM_CACHE_ROOT, shim.VLLM_DCP_Q_REPLICATE, shim.VLLM_GPU_SYNC_CHECK) == ("/pinned-cache", False, None)
    with pytest.raises(AttributeError, match="VLLM_NO_SUCH_FLAG"):
        shim.VLLM_NO_SUCH_FLAG  # noqa: B018
    assert {"VLLM_DCP_Q_REPLICATE", "VLLM_GPU_SYNC_CHECK"} <= set(dir(shim))
