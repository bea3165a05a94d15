"""--tiny for speculative-decoding drafts (EAGLE, EAGLE-3, DFlash): a tiny target beside the tiny draft.

A draft is an architecture of upstream's ``_SPECULATIVE_DECODING_MODELS`` whose class names its
method (``Eagle3...``/``...Eagle3``: eagle3; ``DFlash...``, and ``LiLiCorr...``, which vLLM loads as
a DFlash draft: dflash; ``Eagle...``: eagle; MTP heads are not drafts here: mtp.py). It cannot serve
alone: it proposes tokens from a target's hidden states. So its tiny model is a pair
(``synthesize.write_pair``, in the upstream env): the reference tiny Qwen2 of
``qwen2_checkpoint.py`` as the target (hidden size and vocabulary are the shrink rules' own, which
the draft's tiny config has too) and the draft's tiny config with weights under the checkpoint names
upstream's draft class loads (``vllm_weights``, the class built for that target).

Both servers serve the target with ``--speculative-config`` naming the draft: the control's run
proves that upstream serves the tiny draft, and its greedy tokens are step 11's ground truth.
Speculative decoding is lossless, so the pinned tokens must equal the target's own; the acceptance counts of vLLM's ``/metrics``
(``SPEC_METRICS``) go to summary.json's ``draft``. A pin whose speculative decoding cannot load
the draft (``PIN_FACTS``: none on CPU at vLLM 0.11.0 and 0.13.0, 0.24.0's broken CPU rejection
sampler, a method the pin lacks) skips with one line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_flmigrate.index.registries import Architecture

SPECULATIVE_TABLE = "_SPECULATIVE_DECODING_MODELS"
#: The draft tokens per step: enough to see acceptance, few enough for a tiny CPU run.
NUM_SPECULATIVE_TOKENS = 2
#: (what an architecture or class name holds, lowercased; the method vLLM's --speculative-config names)
METHODS = (("eagle3", "eagle3"), ("dflash", "dflash"), ("lilicorr", "dflash"), ("eagle", "eagle"))
#: vLLM's Prometheus counters of speculative decoding -> summary.json's keys.
SPEC_METRICS = {
    "vllm:spec_decode_num_drafts": "drafts",
    "vllm:spec_decode_num_draft_tokens": "draft_tokens",
    "vllm:spec_decode_num_accepted_tokens": "accepted_tokens",
}
_SAMPLE = re.compile(r"^(?P<name>[\w:]+?)(?:_total)?(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)\s*$")
_POSITION = re.compile(r'position="(\d+)"')
_RAISED = re.compile(r"\b\w*(?:Error|Exception): ")  # ``AssertionError: ...``
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # vLLM colours its log's process prefixes
#: What a pinned server's log says when the pin's platform cannot run the draft (the error line's
#: pattern; the fact, with {version}, {method} and {arch}).
PIN_FACTS = (
    (
        re.compile(r"spec decode is not supported"),
        "vLLM {version}'s CPU model runner does not support speculative decoding",
    ),
    (
        # vLLM 0.24.0's CPU stand-in for the rejection sampler's Triton kernel (utils/cpu_triton_utils.py)
        # lacks the USE_FP64_GUMBEL argument its sampler passes: the engine's first sampler run fails
        re.compile(r"_sample_recovered_tokens_kernel_impl\(\) got an unexpected keyword argument"),
        "vLLM {version}'s CPU speculative decoding cannot start (its CPU rejection-sampling kernel lacks "
        "an argument its sampler passes)",
    ),
    (
        re.compile(r"speculative_config\.method|Input should be '(?:ngram|eagle)'|Invalid method|Unsupported method"),
        "vLLM {version} has no speculative decoding method {method}",
    ),
)


def draft_method(arch: Architecture) -> str | None:
    """The --speculative-config method of a draft architecture; None when ``arch`` is not a draft
    (not in the speculative table, or an MTP head)."""
    if arch.table != SPECULATIVE_TABLE:
        return None
    names = f"{arch.class_name} {arch.name}".lower()
    return next((method for token, method in METHODS if token in names), None)


def find_draft(architectures: Iterable[Architecture]) -> tuple[Architecture, str] | None:
    """The unit's draft architecture and its method: the first named as its class, else the first
    (a unit's aliases, ``PEagleDraftModel`` beside ``Eagle3LlamaForCausalLM``, name variants of the
    class that vLLM's draft config may rename)."""
    found = [(arch, method) for arch in architectures if (method := draft_method(arch))]
    return next((pair for pair in found if pair[0].name == pair[0].class_name), found[0] if found else None)


def speculative_config(method: str, draft: Path, tokens: int = NUM_SPECULATIVE_TOKENS) -> str:
    """The --speculative-config value naming the tiny draft."""
    return json.dumps({"method": method, "model": str(draft), "num_speculative_tokens": tokens})


def parse_metrics(text: str) -> dict:
    """The acceptance counts in a /metrics text (counters summed over label sets; per-position
    acceptance as a list); {} when the server exposes none."""
    found: dict = {}
    per_position: dict[int, float] = {}
    for line in text.splitlines():
        sample = _SAMPLE.match(line.strip())
        if not sample or line.startswith("#"):
            continue
        name, labels = sample["name"], sample["labels"] or ""
        try:
            value = float(sample["value"])
        except ValueError:
            continue
        if name in SPEC_METRICS:
            key = SPEC_METRICS[name]
            found[key] = found.get(key, 0) + int(value)
        elif name == "vllm:spec_decode_num_accepted_tokens_per_pos" and (position := _POSITION.search(labels)):
            index = int(position.group(1))
            per_position[index] = per_position.get(index, 0) + value
    if per_position:
        found["accepted_per_position"] = [int(per_position[i]) for i in sorted(per_position)]
    if found.get("draft_tokens"):
        found["acceptance_rate"] = round(found.get("accepted_tokens", 0) / found["draft_tokens"], 4)
    return found


def report_lines(pair: dict | None, counts: dict | None) -> list[str]:
    """report.md's lines on a draft's pair (summary.json's ``tiny.draft``) and its acceptance counts."""
    if not pair:
        return []
    line = f"- Draft: {pair['method']} with the tiny target {pair['target']}"
    if counts:
        rate = counts.get("acceptance_rate")
        line += (
            f"; accepted {counts.get('accepted_tokens', 0)} of {counts.get('draft_tokens', 0)} draft tokens"
            f" in {counts.get('drafts', 0)} drafts" + (f" (rate {rate})" if rate is not None else "")
        )
    return [line]


def pin_fact(log: str, version: str, method: str, arch: str) -> str | None:
    """The one line saying why the pin's speculative decoding cannot load ``arch``'s draft, from its
    server log (the raised error's line rather than the source line a traceback quotes); None when
    the log shows no such platform fact (then the failure is the migration's)."""
    lines = [line.strip() for line in _ANSI.sub("", log).splitlines()]
    for pattern, fact in PIN_FACTS:
        found = [line for line in lines if pattern.search(line)]
        if found:
            line = next((line for line in found if _RAISED.search(line)), found[0])
            said = fact.format(version=version, method=method, arch=arch)
            return f"{said}: the draft {arch} is not judged at this pin ({line[:200]})"
    return None
