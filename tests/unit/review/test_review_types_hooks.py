"""Type-aware missing-attributes and call-signatures (annotations, generic bases, constructor
assignments, return annotations), compat modules reviewed like model files, and uncalled-hooks."""

from __future__ import annotations

import pytest

from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.review import MigratedFile, ReviewContext, cases, review
from pytest_flmigrate.review.hooks import PORTS
from tests.fixtures.trees import VLLM_CORE, write

# The pin: a processor generic in its processing info, which it calls through _to_mm_items, and
# a pooling record with a cursor field.
PINNED = {
    **VLLM_CORE,
    "vllm/multimodal/__init__.py": "",
    "vllm/multimodal/processing.py": """
        from typing import Generic, TypeVar

        class BaseProcessingInfo:
            def __init__(self, ctx):
                self.ctx = ctx

            def get_hf_config(self):
                return self.ctx

            def get_supported_mm_limits(self):
                return {}

        _I = TypeVar("_I", bound=BaseProcessingInfo)

        class BaseMultiModalProcessor(Generic[_I]):
            def __init__(self, info: _I, cache=None):
                self.info = info

            def apply(self, prompt, mm_data):
                items = self._to_mm_items(mm_data)
                return self._call_hf_processor(prompt, items)

            def _to_mm_items(self, mm_data):
                return mm_data

            def _call_hf_processor(self, prompt, items):
                return prompt
    """,
    "vllm/v1/__init__.py": "",
    "vllm/v1/pool/__init__.py": "",
    "vllm/v1/pool/metadata.py": """
        from dataclasses import dataclass

        @dataclass
        class PoolingMetadata:
            prompt_lens: list
            pooling_cursor: object = None

            def get_prompt_token_ids(self, index):
                return []
    """,
}

# Upstream: the info parses data itself and has tokenization defaults; the processor calls a
# _parse_mm_items hook; the pooling record hands out its cursor through a method.
UPSTREAM = {
    **PINNED,
    "vllm/multimodal/processing.py": PINNED["vllm/multimodal/processing.py"]
    .replace(
        "            def get_supported_mm_limits(self):\n",
        "            def parse_mm_data(self, mm_data, validate=True):\n                return mm_data\n\n"
        "            def get_default_tok_params(self):\n                return {}\n\n"
        "            def get_supported_mm_limits(self):\n",
    )
    .replace("self._to_mm_items(mm_data)", "self._parse_mm_items(mm_data)")
    .replace("            def _to_mm_items(self, mm_data):\n", "            def _parse_mm_items(self, mm_data):\n"),
    "vllm/v1/pool/metadata.py": PINNED["vllm/v1/pool/metadata.py"].replace(
        "            def get_prompt_token_ids(self, index):\n",
        "            def get_pooling_cursor(self):\n                return self.pooling_cursor\n\n"
        "            def get_prompt_token_ids(self, index):\n",
    ),
}

MODEL = "vllm_fl/models/newmm.py"
MODEL_SOURCE = """
from vllm.multimodal.processing import BaseMultiModalProcessor, BaseProcessingInfo
from vllm.v1.pool.metadata import PoolingMetadata


class NewProcessingInfo(BaseProcessingInfo):
    def get_default_tok_params(self):
        return {"add_special_tokens": False}

    def get_supported_mm_limits(self):
        return {"image": 1}


class NewProcessor(BaseMultiModalProcessor[NewProcessingInfo]):
    def _parse_mm_items(self, mm_data):
        return mm_data

    def _call_hf_processor(self, prompt, items):
        parsed = self.info.parse_mm_data(items)
        self.info.get_hf_config()
        return parsed


class Pooled:
    def __init__(self):
        self.meta = PoolingMetadata([1])

    def cursor(self):
        return self.meta.get_pooling_cursor()


def pool(pooling_metadata: PoolingMetadata | None):
    pooling_metadata.pooling_cursor
    pooling_metadata.get_prompt_token_ids(0, 1)
    pooling_metadata.set_later  # upstream lacks it too: not a migration gap
    return pooling_metadata.get_pooling_cursor()


def build() -> "PoolingMetadata":
    return PoolingMetadata([1])


def use():
    meta = build()
    return meta.get_pooling_cursor()


def untyped(record):
    return record.get_pooling_cursor()
"""

COMPAT = "vllm_fl/compat/model_executor/layers/pooler/methods.py"
COMPAT_SOURCE = """
from vllm.v1.pool.metadata import PoolingMetadata


def forward_all(hidden_states, pooling_metadata: PoolingMetadata):
    cursor = pooling_metadata.get_pooling_cursor()
    return hidden_states, cursor
"""


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    pinned = write(tmp_path_factory.mktemp("pinned"), PINNED)
    upstream = write(tmp_path_factory.mktemp("upstream"), UPSTREAM)
    return [index_directory(pinned, "vllm", "0.13.0")], [index_directory(upstream, "vllm", "0.33.0")]


@pytest.fixture
def context(tmp_path, indexes):
    plugin = write(
        tmp_path / "plugin",
        {
            "vllm_fl/__init__.py": "",
            "vllm_fl/models/__init__.py": "",
            MODEL: MODEL_SOURCE,
            COMPAT: COMPAT_SOURCE,
        },
    )
    pinned, upstream = indexes
    return ReviewContext(
        plugin_dir=plugin,
        pinned_indexes=pinned,
        upstream_indexes=upstream,
        files=[
            MigratedFile.at(MODEL, "model", "vllm.model_executor.models.newmm"),
            MigratedFile.at(COMPAT, "compat", "vllm.model_executor.layers.pooler.methods"),
        ],
    )


def lines_of(findings, file: str = MODEL) -> dict[int, str]:
    source = MODEL_SOURCE if file == MODEL else COMPAT_SOURCE
    text = source.lstrip("\n").splitlines()
    return {f.line: text[f.line - 1].strip() for f in findings if f.file == file}


def test_members_are_followed_through_annotations_generic_bases_constructors_and_returns(context):
    findings = review(context, ["missing-attributes"])
    assert sorted(lines_of(findings).values()) == sorted(
        [
            "parsed = self.info.parse_mm_data(items)",  # BaseMultiModalProcessor[NewProcessingInfo].info
            "return self.meta.get_pooling_cursor()",  # self.meta = PoolingMetadata(...)
            "return pooling_metadata.get_pooling_cursor()",  # pooling_metadata: PoolingMetadata | None
            "return meta.get_pooling_cursor()",  # meta = build() -> "PoolingMetadata"
        ]
    )
    info = next(f for f in findings if f.symbol == "self.info.parse_mm_data")
    assert "no parse_mm_data on NewProcessingInfo in the pin" in info.message
    assert "upstream BaseProcessingInfo provides it" in info.message
    cursor = next(f for f in findings if f.symbol == "pooling_metadata.get_pooling_cursor")
    assert "nearest: pooling_cursor" in cursor.message


def test_untyped_values_and_members_upstream_lacks_too_are_not_reported(context):
    symbols = {f.symbol for f in review(context, ["missing-attributes"])}
    assert "meta.get_pooling_cursor" in symbols  # typed through build()'s return annotation
    assert "pooling_metadata.set_later" not in symbols
    assert "record.get_pooling_cursor" not in symbols  # an unannotated parameter: unknown


def test_calls_are_checked_against_the_typed_receivers_method(context):
    findings = review(context, ["call-signatures"])
    assert [(f.symbol, f.line) for f in findings] == [("pooling_metadata.get_prompt_token_ids", 33)]
    assert "takes 1 positional argument(s) but 2 given" in findings[0].message


def test_compat_modules_are_reviewed_with_the_same_checks(context):
    assert {case.check for case in cases(context) if case.file == COMPAT} >= {
        "unresolved-imports",
        "call-signatures",
        "missing-attributes",
        "uncalled-hooks",
    }
    findings = [f for f in review(context) if f.file == COMPAT]
    assert [(f.check, f.symbol) for f in findings] == [("missing-attributes", "pooling_metadata.get_pooling_cursor")]
    assert lines_of(findings, COMPAT) == {5: "cursor = pooling_metadata.get_pooling_cursor()"}


def test_override_of_a_hook_the_pinned_base_never_calls(context):
    findings = review(context, ["uncalled-hooks"])
    by_symbol = {f.symbol: f for f in findings}
    assert set(by_symbol) == {"NewProcessingInfo.get_default_tok_params", "NewProcessor._parse_mm_items"}
    hook = by_symbol["NewProcessor._parse_mm_items"]
    assert "overrides upstream's BaseMultiModalProcessor._parse_mm_items" in hook.message
    assert "the pin calls _to_mm_items" in hook.message and hook.fix.startswith("manual: move what")
    assert lines_of([hook]) == {14: "def _parse_mm_items(self, mm_data):"}


def test_a_method_another_migrated_file_calls_is_not_a_hook(context):
    """A compat port adds upstream's methods for the migrated files to call
    (``MMEncoderAttention.compute_max_seqlen``): called by the migration, not by the pin's base."""
    caller = "vllm_fl/models/caller.py"
    write(context.plugin_dir, {caller: "def f(info):\n    return info.get_default_tok_params()\n"})
    context.files.append(MigratedFile.at(caller, "model", "vllm.model_executor.models.caller"))
    symbols = {f.symbol for f in review(context, ["uncalled-hooks"])}
    assert symbols == {"NewProcessor._parse_mm_items"}


def test_a_port_step_4_writes_has_no_hooks(context):
    """A port (autofix/shims/, written as vllm_fl/compat/<stem>.py) is upstream's API for the migrated
    files: its methods are called by them, not by the pin's base."""
    port = "vllm_fl/compat/mm_encoder_attention.py"
    assert "vllm_fl.compat.mm_encoder_attention" in PORTS and "vllm_fl.compat.stacked_weights" in PORTS
    write(context.plugin_dir, {port: MODEL_SOURCE})
    context.files.append(MigratedFile.at(port, "compat"))
    assert {f.file for f in review(context, ["uncalled-hooks"])} == {MODEL}
