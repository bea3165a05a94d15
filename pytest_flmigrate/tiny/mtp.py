"""--tiny for multi-token-prediction heads: an MTP head served inside a tiny model of its target.

An MTP head (``Glm4MoeLiteMTPModel``) is an architecture of upstream's speculative table that no
draft method names (drafts.py) and whose name says ``MTP``. vLLM serves it only inside its target:
the target's checkpoint with ``--speculative-config '{"method": "mtp", ...}'``, from whose config
upstream's ``SpeculativeConfig.hf_config_override`` picks the head and reads how many layers it
has (``n_predict = getattr(config, "num_nextn_predict_layers", ...)``; ``LAYER_COUNT_FILE``). Served
alone, a head asserts that it has a speculative config.

So the tiny model of an MTP head is the tiny model of its target, the first other model unit the
head's files import from that is no head itself (``glm4_moe_lite_mtp`` -> ``glm4_moe_lite``),
with every layer-count field the override reads set to one layer (synthesize.py's
``--mtp-fields``), in a cache folder of its own. Both servers serve it speculating with the head:
the control's run proves that upstream serves the tiny head, the pinned one runs the migrated
head. The head's weights are not synthesized (no checkpoint names for them are known), so both
servers load dummy weights and tokens are not compared: what is judged is that the head serves.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.tiny import drafts

if TYPE_CHECKING:
    from pytest_flmigrate.index.registries import Architecture
    from pytest_flmigrate.run import ModelRun

METHOD = "mtp"
#: Where upstream says which config fields count an MTP head's layers.
LAYER_COUNT_FILE = "vllm/config/speculative.py"
#: The draft tokens per step: the one layer the tiny target's config gives its head.
NUM_SPECULATIVE_TOKENS = 1
DUMMY_REASON = "an MTP head's weights are not synthesized: the pair serves dummy weights"


def is_head(arch: Architecture) -> bool:
    return arch.table == drafts.SPECULATIVE_TABLE and drafts.draft_method(arch) is None and "MTP" in arch.name


def find_head(architectures: Iterable[Architecture]) -> Architecture | None:
    """The unit's MTP head when every architecture of the unit is one (a unit with a model of its
    own beside a head serves that model)."""
    archs = list(architectures)
    return archs[0] if archs and all(is_head(arch) for arch in archs) else None


def layer_fields(upstream_root: Path) -> tuple[str, ...]:
    """The config fields upstream reads an MTP head's layer count from: the names of its
    ``n_predict = getattr(<config>, "<field>", ...)`` assignments, sorted; () when the file has
    none."""
    try:
        tree = ast.parse((upstream_root / LAYER_COUNT_FILE).read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return ()
    found = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and any(_named(t, "n_predict") for t in node.targets)):
            continue
        call = node.value
        if (
            isinstance(call, ast.Call)
            and _named(call.func, "getattr")
            and len(call.args) >= 2
            and isinstance(call.args[1], ast.Constant)
            and isinstance(call.args[1].value, str)
        ):
            found.add(call.args[1].value)
    return tuple(sorted(found))


def _named(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def target_of(run: ModelRun) -> ModelRun:
    """The run of the head's target: the first other model unit the head's files import from that
    is no head itself; FlmigrateError naming the head when there is none."""
    from pytest_flmigrate.tiny import infer

    for owner in infer.imported_models(run, run.workspace.upstream_index()):
        try:
            target = run.workspace.run_for(owner)
            architectures = target.unit().architectures
        except FlmigrateError:
            continue
        if architectures and find_head(architectures) is None:
            return target
    head = run.unit().architectures[0].name
    raise FlmigrateError(
        f"--tiny: the MTP head {head} serves inside its target model, and {run.name}'s files import "
        "no other model to be that target"
    )


def speculative_config() -> str:
    """The --speculative-config value of an MTP pair (the head comes from the target's checkpoint)."""
    return json.dumps({"method": METHOD, "num_speculative_tokens": NUM_SPECULATIVE_TOKENS})
