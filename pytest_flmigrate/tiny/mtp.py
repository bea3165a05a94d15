"""--tiny for multi-token-prediction heads: an MTP head served inside a tiny model of its target.

An MTP head (``Glm4MoeLiteMTPModel``) is an architecture of upstream's speculative table that no
draft method names (drafts.py) and whose name says ``MTP``. vLLM serves it only inside its target:
the target's checkpoint with ``--speculative-config '{"method": "mtp", ...}'``, from whose config
upstream's ``SpeculativeConfig.hf_config_override`` picks the head and reads how many layers it
has (``n_predict = getattr(config, "num_nextn_predict_layers", ...)``; ``LAYER_COUNT_FILE``). Served
alone, a head asserts that it has a speculative config.

So the tiny model of an MTP head is the tiny model of its target: of the model units the head's
files import (then the one its name without ``_mtp`` names), the first whose architecture or model
type upstream's override turns into the head (``override_targets``: ``exaone4_5_mtp`` ->
``exaone4_5``, not the ``exaone4`` whose layers it imports), with every layer-count field the
override reads set to one layer (synthesize.py's ``--mtp-fields``), in a cache folder of its own.
Both servers serve it speculating with the head: the control's run proves that upstream serves the
tiny head, the pinned one runs the migrated head. The head's weights are not synthesized (no
checkpoint names for them are known), so both servers load dummy weights and tokens are not
compared: what is judged is that the head serves.
"""

from __future__ import annotations

import ast
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
    tree = _speculative_module(upstream_root)
    if tree is None:
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


def _speculative_module(upstream_root: Path) -> ast.Module | None:
    """Upstream's ``LAYER_COUNT_FILE``, parsed; None when it is absent or unreadable."""
    try:
        return ast.parse((upstream_root / LAYER_COUNT_FILE).read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None


def _named(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def override_targets(upstream_root: Path) -> dict[str, frozenset[str]]:
    """Head architecture -> the architectures and model types whose config upstream's
    ``hf_config_override`` turns into that head: the strings an ``if`` tests before it sets
    ``"architectures": [<head>]`` (or maps an architecture to the head in a dict), and those of
    each ``if`` that renames a model type into one of them (``exaone4_5`` -> ``exaone4_5_mtp``)."""
    tree = _speculative_module(upstream_root)
    if tree is None:
        return {}
    heads: dict[str, set[str]] = {}
    renamed: dict[str, set[str]] = {}  # the model type set -> what the ``if`` that sets it tests
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        tested = _strings(node.test)
        for inner in (n for statement in node.body for n in ast.walk(statement)):
            for head in _heads_set(inner):
                heads.setdefault(head, set()).update(tested)
            for source, head in _heads_mapped(inner):
                heads.setdefault(head, set()).add(source)
            for value in _model_type_set(inner):
                renamed.setdefault(value, set()).update(tested)
    return {head: frozenset(_closure(found, renamed)) for head, found in heads.items()}


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _heads_set(node: ast.AST) -> list[str]:
    """The architectures of a ``{"architectures": [...]}`` literal."""
    if not isinstance(node, ast.Dict):
        return []
    for key, value in zip(node.keys, node.values, strict=True):
        if isinstance(key, ast.Constant) and key.value == "architectures" and isinstance(value, ast.List):
            return [v.value for v in value.elts if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return []


def _heads_mapped(node: ast.AST) -> list[tuple[str, str]]:
    """(architecture, head) of a dict literal mapping architectures to ``...MTP...`` heads."""
    if not isinstance(node, ast.Dict):
        return []
    return [
        (key.value, value.value)
        for key, value in zip(node.keys, node.values, strict=True)
        if isinstance(key, ast.Constant)
        and isinstance(value, ast.Constant)
        and isinstance(key.value, str)
        and isinstance(value.value, str)
        and "MTP" in value.value
    ]


def _model_type_set(node: ast.AST) -> set[str]:
    """The model type an ``<config>.model_type = "..."`` assignment sets ({} for other nodes)."""
    if isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Attribute) and t.attr == "model_type" for t in node.targets
    ):
        return _strings(node.value)
    return set()


def _closure(found: set[str], renamed: dict[str, set[str]]) -> set[str]:
    pending, seen = list(found), set(found)
    while pending:
        for source in renamed.get(pending.pop(), set()) - seen:
            seen.add(source)
            pending.append(source)
    return seen


def target_of(run: ModelRun, head: str) -> ModelRun:
    """The run of the head's target: of the model units the head's files import, then the one its
    name without ``_mtp`` names, the first that is no head and whose architecture or model type
    upstream turns into the head (``override_targets``; where upstream names none, the first that
    is no head); FlmigrateError naming the head when there is none."""
    from pytest_flmigrate.tiny import infer

    leads_to = override_targets(run.workspace.upstream().root).get(head, frozenset())
    imported = infer.imported_models(run, run.workspace.upstream_index())
    owners = [owner for owner in dict.fromkeys([*imported, run.name.removesuffix("_mtp")]) if owner != run.name]
    checked: list[str] = []  # the model units tried
    for owner in owners:
        try:
            target = run.workspace.run_for(owner)
            unit = target.unit()
        except FlmigrateError:
            continue
        if not unit.architectures or find_head(unit.architectures) is not None:
            continue
        checked.append(owner)
        model_type = unit.config.model_type if unit.config is not None else None
        if not leads_to or model_type in leads_to or leads_to & {arch.name for arch in unit.architectures}:
            return target
    serves_in = f" (upstream serves it inside {', '.join(sorted(leads_to))})" if leads_to else ""
    if not checked:
        tried = f"{run.name} imports no other model"
    elif len(checked) == 1:
        tried = f"{checked[0]} is not that target"
    else:
        tried = f"none of {', '.join(checked)} is that target"
    raise FlmigrateError(f"--tiny: the MTP head {head} serves inside its target model{serves_in}, and {tried}")
