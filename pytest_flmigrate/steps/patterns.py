"""Step 3: which existing plugin model the unit is closest to, and which pattern to follow.

Patterns (docs/procedure.md, step 3): wrapper (kimi_k25), full adaptation (qwen3_5), hybrid
attention (qwen3_next), multimodal (minicpmo). Each decision keeps the evidence it used.
"""

from __future__ import annotations

import ast
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate.index.symbols import parse_module
from pytest_flmigrate.layout import PLUGIN_PACKAGE
from pytest_flmigrate.steps.discover import ModelUnit
from pytest_flmigrate.tiny.drafts import SPECULATIVE_TABLE, find_draft

WRAPPER_MAX_LINES = 300
_HYBRID_MARKERS = ("vllm.model_executor.layers.mamba", "IsHybrid", "get_mamba_state_shape_from_config")
MODEL_PACKAGES = ("vllm.model_executor.models.", "vllm_fl.models.", "vllm.models.")


@dataclass(frozen=True)
class PatternDecision:
    pattern: str  # "wrapper", "full", "hybrid", "multimodal"
    nearest: str | None  # plugin model file stem
    evidence: tuple[str, ...]


def _model_imports(tree: ast.Module, package: str) -> set[str]:
    """Stems of the model modules a file imports (``qwen3_next`` for ``.qwen3_next``)."""
    stems: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level and node.module:
                stems.add(node.module.split(".")[0])
            elif node.module and node.module.startswith(MODEL_PACKAGES):
                for prefix in MODEL_PACKAGES:
                    if node.module.startswith(prefix):
                        stems.add(node.module[len(prefix) :].split(".")[0])
    return stems - {"interfaces", "utils", "module_mapping", "vision", "interfaces_base"}


def _source_text(paths: list[Path]) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace") for path in paths)


def decide_pattern(
    unit: ModelUnit, upstream_root: Path, plugin_dir: Path, excluded: AbstractSet[str] = frozenset()
) -> PatternDecision:
    """Pattern and nearest plugin model; ``excluded`` stems (this batch's own output) are ignored."""
    paths = [upstream_root / relative for relative in unit.files]
    main_tree = parse_module(paths[0]) or ast.Module(body=[], type_ignores=[])
    text = _source_text(paths)
    imported = set().union(*(_model_imports(parse_module(p) or main_tree, unit.module) for p in paths)) - {unit.name}
    evidence: list[str] = []
    lines = sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    hybrid_hits = [marker for marker in _HYBRID_MARKERS if marker in text]
    if unit.is_multimodal:
        pattern = "multimodal"
        evidence.append("registered in upstream's _MULTIMODAL_MODELS")
    elif hybrid_hits:
        pattern = "hybrid"
        evidence.append("uses " + ", ".join(hybrid_hits))
    elif lines <= WRAPPER_MAX_LINES and imported:
        pattern = "wrapper"
        evidence.append(f"{lines} lines of code building on {', '.join(sorted(imported))}")
    else:
        pattern = "full"
        evidence.append(f"{lines} lines of code of its own")
    nearest, reason = _nearest_plugin_model(imported, pattern, plugin_dir, excluded)
    evidence.append(reason)
    draft = find_draft(unit.architectures)
    if draft:
        evidence.append(
            f"{draft[0].name} is a speculative-decoding draft ({draft[1]}, in upstream's {SPECULATIVE_TABLE}): "
            "--tiny judges it with a tiny target"
        )
    return PatternDecision(pattern, nearest, tuple(evidence))


def _nearest_plugin_model(
    imported: set[str], pattern: str, plugin_dir: Path, excluded: AbstractSet[str]
) -> tuple[str | None, str]:
    models_dir = plugin_dir / PLUGIN_PACKAGE / "models"
    candidates = (
        sorted(p for p in models_dir.glob("*.py") if p.stem != "__init__" and p.stem not in excluded)
        if models_dir.is_dir()
        else []
    )
    if not candidates:
        return None, "the plugin has no model files to compare with"
    direct = [p.stem for p in candidates if p.stem in imported]
    if direct:
        return direct[0], f"imports {direct[0]}, which the plugin already adapts"
    best, best_score = None, 0.0
    for path in candidates:
        tree = parse_module(path)
        theirs = _model_imports(tree, "") if tree else set()
        union = imported | theirs
        score = len(imported & theirs) / len(union) if union else 0.0
        if score > best_score:
            best, best_score = path.stem, score
    if best:
        best_tree = parse_module(models_dir / f"{best}.py")
        shared = sorted(imported & (_model_imports(best_tree, "") if best_tree else set()))
        return best, f"shares imports of {', '.join(shared)} with the plugin's {best}"
    return None, f"no plugin model shares its model imports; follow the {pattern} pattern from scratch"
