"""The CPU engine arguments reach vLLM whole through ``--serve-args``/``--bench-args`` as one string."""

from __future__ import annotations

import json

from pytest_flmigrate.servers.cpu_args import CPU_ARGS, CPU_ARGS_TEXT
from pytest_flmigrate.settings import resolve


def test_the_cpu_args_text_splits_back_into_the_args_with_the_json_intact(plugin_tree, tmp_path):
    settings = resolve(
        {"serve_args": CPU_ARGS_TEXT, "bench_args": CPU_ARGS_TEXT, "plugin_dir": str(plugin_tree)}, tmp_path
    )
    assert settings.serve_args == settings.bench_args == CPU_ARGS
    config = CPU_ARGS[CPU_ARGS.index("--compilation-config") + 1]
    assert json.loads(config) == {"custom_ops": ["-rms_norm"]}
