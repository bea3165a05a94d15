"""The first error line and the plugin frame of a vLLM server log (servers/log_errors.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_flmigrate.servers import log_errors

PLUGIN = Path("/work/plugin")
# shaped like vLLM 0.13's engine-core failure: prefixed lines, the root cause first, then the wrapper
ENGINE_LOG = """\
INFO 12-02 10:00:00 [api_server.py:1] vLLM API server version 0.13.0
(EngineCore_DP0 pid=4242) ERROR 12-02 10:00:05 [core.py:708] EngineCore failed to start.
(EngineCore_DP0 pid=4242) ERROR 12-02 10:00:05 [core.py:708] Traceback (most recent call last):
(EngineCore_DP0 pid=4242) ERROR 12-02 10:00:05 [core.py:708]   File "/env/vllm/v1/engine/core.py", line 699, in run_engine_core
(EngineCore_DP0 pid=4242) ERROR 12-02 10:00:05 [core.py:708]     engine_core = EngineCoreProc(*args, **kwargs)
(EngineCore_DP0 pid=4242) ERROR 12-02 10:00:05 [core.py:708]   File "/work/plugin/vllm_fl/models/olmo3.py", line 120, in __init__
(EngineCore_DP0 pid=4242) ERROR 12-02 10:00:05 [core.py:708]     self.layers = make_layers(config)
(EngineCore_DP0 pid=4242) ERROR 12-02 10:00:05 [core.py:708]   File "/work/plugin/vllm_fl/compat/model_executor/models/utils.py", line 33, in make_layers
(EngineCore_DP0 pid=4242) ERROR 12-02 10:00:05 [core.py:708]     return Layers(config.layer_kinds)
(EngineCore_DP0 pid=4242) ERROR 12-02 10:00:05 [core.py:708] AttributeError: 'Olmo3Config' object has no attribute 'layer_kinds'
(APIServer pid=4200) Traceback (most recent call last):
(APIServer pid=4200)   File "/env/vllm/entrypoints/openai/api_server.py", line 10, in run
(APIServer pid=4200) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
"""


def test_the_root_cause_and_the_deepest_plugin_frame():
    assert (
        log_errors.first_error_line(ENGINE_LOG) == "AttributeError: 'Olmo3Config' object has no attribute 'layer_kinds'"
    )
    assert log_errors.plugin_frame(ENGINE_LOG, PLUGIN) == (
        "vllm_fl/compat/model_executor/models/utils.py:33 in make_layers: return Layers(config.layer_kinds)"
    )
    assert log_errors.summary(ENGINE_LOG, PLUGIN) == (
        "AttributeError: 'Olmo3Config' object has no attribute 'layer_kinds' "
        "(at vllm_fl/compat/model_executor/models/utils.py:33 in make_layers: return Layers(config.layer_kinds))"
    )


ASSERTION_LOG = """\
(EngineCore_DP0 pid=7) ERROR 12-07 10:00:05 [core.py:708] Traceback (most recent call last):
(EngineCore_DP0 pid=7) ERROR 12-07 10:00:05 [core.py:708]   File "/env/lib/python3.11/site-packages/vllm/v1/engine/core.py", line 699, in run_engine_core
(EngineCore_DP0 pid=7) ERROR 12-07 10:00:05 [core.py:708]     engine_core = EngineCoreProc(*args, **kwargs)
(EngineCore_DP0 pid=7) ERROR 12-07 10:00:05 [core.py:708]   File "/env/lib/python3.11/site-packages/vllm/model_executor/models/glm4_moe_lite_mtp.py", line 93, in __init__
(EngineCore_DP0 pid=7) ERROR 12-07 10:00:05 [core.py:708]     assert speculative_config is not None
(EngineCore_DP0 pid=7) ERROR 12-07 10:00:05 [core.py:708] AssertionError
"""


def test_a_bare_assertion_says_which_statement_raised_it_and_where():
    assert log_errors.first_error_line(ASSERTION_LOG) == (
        "AssertionError (assert speculative_config is not None, at vllm/model_executor/models/glm4_moe_lite_mtp.py:93)"
    )
    assert log_errors.first_error_line("AssertionError\n") == "AssertionError"  # no traceback: as it is


def test_an_error_outside_the_plugin_has_no_frame_and_a_clean_log_no_error():
    upstream_only = "\n".join(line for line in ENGINE_LOG.splitlines() if "/work/plugin/" not in line)
    assert (
        log_errors.summary(upstream_only, PLUGIN)
        == "AttributeError: 'Olmo3Config' object has no attribute 'layer_kinds'"
    )
    assert log_errors.summary("INFO started\nWARNING 12-02 10:00:00 [x.py:1] slow\n", PLUGIN) is None
    # "ERROR" log lines that are not exception lines do not count
    assert (
        log_errors.first_error_line(
            "(EngineCore_DP0 pid=1) ERROR 12-02 10:00:05 [core.py:708] EngineCore failed to start."
        )
        is None
    )


def test_coloured_process_prefixes_are_dropped():
    # vLLM 0.13 colours the process name: what the pinned server log of a migrated mistral held
    log = (
        '\x1b[0;36m(EngineCore_DP0 pid=22704)\x1b[0;0m   File "/work/plugin/vllm_fl/models/mistral.py", line 151, '
        "in __init__\n\x1b[0;36m(EngineCore_DP0 pid=22704)\x1b[0;0m     super().__init__(\n"
        "\x1b[0;36m(EngineCore_DP0 pid=22704)\x1b[0;0m TypeError: LlamaDecoderLayer.__init__() got an unexpected "
        "keyword argument 'attn_layer_type'\n"
    )
    assert log_errors.summary(log, PLUGIN) == (
        "TypeError: LlamaDecoderLayer.__init__() got an unexpected keyword argument 'attn_layer_type' "
        "(at vllm_fl/models/mistral.py:151 in __init__: super().__init__()"
    )


# shaped like vLLM 0.32's model inspection failing in its registry subprocess: the wrappers come first,
# the child's stderr (with its own traceback) inside the RuntimeError's message
SUBPROCESS_LOG = """\
(APIServer pid=9) Traceback (most recent call last):
(APIServer pid=9)   File "/env/vllm/model_executor/models/registry.py", line 1569, in _run_in_subprocess
(APIServer pid=9)     returned.check_returncode()
(APIServer pid=9) subprocess.CalledProcessError: Command '['/env/bin/python', '-m', 'vllm.model_executor.models.registry']' returned non-zero exit status 1.
(APIServer pid=9) The above exception was the direct cause of the following exception:
(APIServer pid=9) RuntimeError: Error raised in subprocess:
(APIServer pid=9) Traceback (most recent call last):
(APIServer pid=9)   File "/work/plugin/vllm_fl/models/funasr.py", line 7, in <module>
(APIServer pid=9)     import torchvision
(APIServer pid=9) ModuleNotFoundError: No module named 'torchvision'
"""


def test_a_failed_subprocess_is_reported_by_its_own_error_not_by_the_wrappers():
    assert log_errors.summary(SUBPROCESS_LOG, PLUGIN) == (
        "ModuleNotFoundError: No module named 'torchvision' (at vllm_fl/models/funasr.py:7 in <module>: import torchvision)"
    )
    # with nothing after them, a wrapper is still an error line
    only_wrapper = SUBPROCESS_LOG.split("(APIServer pid=9) The above")[0]
    assert log_errors.first_error_line(only_wrapper).startswith("subprocess.CalledProcessError: Command")


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        (
            "ModuleNotFoundError: No module named 'torchvision.ops'",
            {"exception": "ModuleNotFoundError", "module": "torchvision.ops", "config": None, "processor": False},
        ),
        (
            "AttributeError: 'CohereAsrConfig' object has no attribute 'transf_decoder'",
            {"exception": "AttributeError", "config": "CohereAsrConfig", "field": "transf_decoder", "module": None},
        ),
        (
            "transformers.utils.OSError: Can't load feature extractor for '/cache/tiny/x'.",
            {"exception": "OSError", "processor": True, "module": None, "field": None},
        ),
        # the same words in another cause are not that cause: an attribute of a layer, a module in a message
        ("AttributeError: 'LlamaModel' object has no attribute 'embed'", {"config": None, "field": None}),
        ("RuntimeError: worker said: No module named 'x'", {"exception": "RuntimeError", "module": None}),
    ],
)
def test_an_error_line_is_read_once_into_its_cause(line, fields):
    cause = log_errors.Cause.of(line)
    assert cause.line == line
    assert {key: getattr(cause, key) for key in fields} == fields


def test_a_feature_vllm_does_not_implement_on_cpu_is_a_platform_fact():
    """The pinned server of an MLA model at vLLM 0.13.0 on CPU: steps 9-11 skip naming it."""
    from types import SimpleNamespace

    from pytest_flmigrate.errors import FlmigrateError
    from pytest_flmigrate.runtime_run import RuntimeRun

    died = (
        "local server exited before http://127.0.0.1:8122/health answered: NotImplementedError: MLA is not "
        "supported on CPU. (at vllm_fl/models/bailing_moe_v3.py:576 in __init__: self.mla_attn = ...)"
    )
    assert log_errors.not_on_cpu(died) == "NotImplementedError: MLA is not supported on CPU."
    assert log_errors.not_on_cpu("ValueError: There is no expert weight named 'x'") is None
    assert log_errors.not_on_cpu("RuntimeError: CUDA out of memory") is None  # not a missing feature
    runtime = SimpleNamespace(
        run=SimpleNamespace(
            name="bailing_moe_v3", workspace=SimpleNamespace(pinned=lambda: SimpleNamespace(version="0.13.0"))
        ),
        draft_not_judged=lambda error: None,  # not a draft: the CPU fact is read from the error
    )
    assert RuntimeRun.platform_fact(runtime, FlmigrateError(died)) == (  # type: ignore[arg-type]
        "the pinned vLLM 0.13.0 cannot run bailing_moe_v3 on CPU, a platform fact: "
        "NotImplementedError: MLA is not supported on CPU."
    )
    assert RuntimeRun.platform_fact(runtime, FlmigrateError("ValueError: x", "log tail")) is None  # type: ignore[arg-type]
