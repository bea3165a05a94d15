"""Weights for a tiny model transformers has no class for, or whose transformers checkpoint upstream
vLLM's ``load_weights`` refuses (``check``): upstream vLLM's own model, saved under the checkpoint
names its ``load_weights`` accepts (runs in the upstream env; synthesize.py calls it).

transformers 5 may save names no checkpoint has (its save-time renames of a sub-model's layout:
``language_model.model.model.``, a vision tower without its ``vision_model.``), or tensors of modules
vLLM builds only by a config flag the tiny config leaves off (q/k norms transformers always builds);
``check`` gives such a checkpoint to the model's ``load_weights`` as vLLM's loader does and, when it is
refused, writes vLLM's own names in its place.

The model class upstream's registry resolves for the tiny config is built on CPU (one rank, gloo)
and every parameter is filled from a generator seeded by the seed and the parameter's name
(``INIT_STD`` as shrink.py's ``INIT_SCALES``; norm weights around 1). The checkpoint names are
the inverse of what ``load_weights`` does with a checkpoint, read from the model itself:

- a fused layer that ``packed_modules_mapping`` names (``qkv_proj`` -> ``q_proj``, ``k_proj``,
  ``v_proj``; the model's and its sub-models', vLLM's conventional ones when none declares it) is
  split along its output dim by the layer's ``output_sizes``;
- fused experts (``w13_weight``, ``w2_weight``) split per expert under the names of the model's
  own ``get_expert_mapping()`` inverted (a layer wrapping its routed experts), else of
  ``FusedMoE.make_expert_params_mapping`` (``gate_proj``/``up_proj``/``down_proj``, else
  ``w1``/``w3``/``w2``), under their module's path, else under the path of the module wrapping it
  (``FusedMoEFactory``'s ``experts.routed_experts``);
- a vocabulary embedding or LM head padded to a multiple of 64 keeps its vocabulary's rows
  (``org_vocab_size``; loading zeroes the padding, which ``fill`` leaves zero);
- ``hf_to_vllm_mapper``'s renames are undone;
- a draft's decoder tensors are tried at the top level too (``top_level``: vLLM's EAGLE drafts
  load them under ``model.``);
- a parameter's own name gives way to its name without the last module where ``load_weights``
  puts that into the same parameter and no other (the model's own code renames it, as real
  checkpoints spell it), tried one tensor at a time.

Then the proof: every parameter is zeroed and ``load_weights`` is given the candidate checkpoint;
the names are kept only when it accepts them all and puts back every parameter bit for bit. So
both servers load the same numbers through the model's real loading code, and a migrated
``load_weights`` that maps a name wrongly diverges. When any of it fails, ``write`` says why in one
line and the tiny model keeps dummy weights.
"""

from __future__ import annotations

import fnmatch
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEIGHTS = "model.safetensors"
INIT_STD = 0.1
EXPERT_NAMES = (("gate_proj", "down_proj", "up_proj"), ("w1", "w2", "w3"))
#: how fused experts are tried, in order: (their names, named after the module wrapping theirs)
EXPERT_SPELLINGS = tuple((names, wrapped) for wrapped in (False, True) for names in EXPERT_NAMES)
#: vLLM's conventional fused layers, for models that do not declare ``packed_modules_mapping``
#: (their ``load_weights`` stacks the same names by a local ``stacked_params_mapping``)
CONVENTIONAL_PACKED = {"qkv_proj": ["q_proj", "k_proj", "v_proj"], "gate_up_proj": ["gate_proj", "up_proj"]}


@dataclass(frozen=True)
class Found:
    parameters: int | None  # None: no weights written
    source: str  # where the weights come from (the class)
    reason: str  # why there are none ("" when written)


def write(
    out_dir: Path, arch: str, seed: int, *, trust_remote_code: bool, draft_of: tuple[Path, str] | None = None
) -> Found:
    """``model.safetensors`` in ``out_dir`` (holding the tiny config and tokenizer) from upstream
    vLLM's class for ``arch``; ``Found`` says what was written or why nothing was. ``draft_of``
    (a target folder, a speculative method): ``out_dir`` is a draft, built as that target's."""
    try:
        model = build(out_dir, seed, trust_remote_code, draft_of)
    except Exception as exc:  # noqa: BLE001 - any failure to build the model: one line
        return Found(None, "", f"upstream vLLM cannot build {arch} on CPU to synthesize weights: {first_line(exc)}")
    return synthesized(model, out_dir, arch, seed)


def synthesized(model: Any, out_dir: Path, arch: str, seed: int) -> Found:
    """``model``'s parameters (upstream vLLM's ``arch``, built) filled from the seed and saved in
    ``out_dir`` under the checkpoint names its ``load_weights`` accepts, proven."""
    source = f"{type(model).__module__}.{type(model).__name__} (upstream vLLM, checkpoint names of its load_weights)"
    patterns = list(getattr(type(model), "allow_patterns_overrides", None) or [])
    if patterns and not any(fnmatch.fnmatch(WEIGHTS, pattern) for pattern in patterns):
        return Found(None, "", f"vLLM loads {arch}'s weights only from files matching {', '.join(patterns)}")
    fill(model, seed)
    candidates, problem = None, ""
    for experts, wrapped in EXPERT_SPELLINGS:
        own = respelled(model, checkpoint_tensors(model, experts, wrapped))
        for tensors in filter(None, (own, top_level(own))):
            problem = prove(model, tensors)
            if not problem:
                candidates = tensors
                break
        if candidates is not None:
            break
    if candidates is None:
        return Found(None, "", f"no checkpoint names that {arch}'s load_weights accepts: {problem}")
    from safetensors.torch import save_file

    save_file({name: tensor.contiguous() for name, tensor in candidates.items()}, str(out_dir / WEIGHTS))
    return Found(sum(p.numel() for p in model.parameters()), source, "")


def check(out_dir: Path, arch: str, seed: int, *, trust_remote_code: bool) -> tuple[str, Found | None]:
    """The checkpoint transformers' class saved in ``out_dir``, given to upstream vLLM's
    ``load_weights`` for ``arch`` as its loader gives it (``accepted``): ``("", None)`` when it takes
    them, or when vLLM cannot build the model here (nothing to judge by: the checkpoint stays);
    else why not, and the weights of ``synthesized`` written in its place (``Found.parameters``
    None, the checkpoint removed, when there are none either). Names transformers writes that no
    checkpoint has (its save-time renames of a sub-model's layout) or tensors of modules vLLM builds
    only by a config flag the tiny config leaves off would make the servers refuse the model."""
    try:
        model = build(out_dir, seed, trust_remote_code)
    except Exception:  # noqa: BLE001 - no vLLM model to judge by: transformers' checkpoint stays
        return "", None
    problem = accepted(model, saved(out_dir))
    if not problem:
        return "", None
    problem = problem.split(". ", 1)[0]  # vLLM's refusal goes on to list every parameter it has
    found = synthesized(model, out_dir, arch, seed)
    if found.parameters is None:
        (out_dir / WEIGHTS).unlink()
    return problem, found


def build(folder: Path, seed: int, trust_remote_code: bool, draft_of: tuple[Path, str] | None = None) -> Any:
    """Upstream vLLM's model for the config in ``folder``, on CPU, one rank; with ``draft_of``, the
    draft model its speculative decoding builds for that target."""
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.distributed import ensure_model_parallel_initialized, init_distributed_environment
    from vllm.engine.arg_utils import EngineArgs
    from vllm.model_executor.model_loader.utils import initialize_model

    speculative = None
    if draft_of is not None:
        speculative = {"method": draft_of[1], "model": str(folder), "num_speculative_tokens": 1}
    args = EngineArgs(
        model=str(draft_of[0] if draft_of else folder),
        speculative_config=speculative,
        dtype="float32",
        load_format="dummy",
        trust_remote_code=trust_remote_code,
        enforce_eager=True,
        seed=seed,
        max_model_len=512,
    )
    config = args.create_engine_config()
    with tempfile.TemporaryDirectory() as rendezvous, set_current_vllm_config(config):
        init_distributed_environment(
            world_size=1, rank=0, local_rank=0, distributed_init_method=f"file://{rendezvous}/init", backend="gloo"
        )
        ensure_model_parallel_initialized(1, 1)
        with torch.device("cpu"):
            if config.speculative_config is not None:
                draft = config.speculative_config.draft_model_config
                return initialize_model(vllm_config=config, model_config=draft).eval()
            return initialize_model(vllm_config=config).eval()


def fill(model: Any, seed: int) -> None:
    """Every parameter from a generator of (seed, name): norms around 1, the rest N(0, INIT_STD)."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
            values = torch.randn(param.shape, generator=generator, dtype=torch.float32) * INIT_STD
            if "norm" in name and name.endswith("weight") and param.dim() == 1:
                values += 1.0
            values[vocabulary(model, name, param.shape[0]) :] = 0.0  # a padded vocabulary's rows: loading zeroes them
            param.copy_(values.to(param.dtype))


def vocabulary(model: Any, name: str, rows: int) -> int:
    """How many of parameter ``name``'s ``rows`` a checkpoint holds: a vocabulary embedding's or LM
    head's (``org_vocab_size``: vLLM pads its rows to a multiple of 64, a checkpoint has the
    vocabulary's own, and loading zeroes the rest), else all."""
    module_path = name.rpartition(".")[0]
    module = model.get_submodule(module_path) if module_path else model
    size = getattr(module, "org_vocab_size", None)
    return size if isinstance(size, int) and 0 < size < rows else rows


def checkpoint_tensors(model: Any, experts: tuple[str, str, str], wrapped: bool = False) -> dict[str, Any]:
    """Checkpoint name -> tensor for every parameter (see the module docstring); ``wrapped``: fused
    experts without a mapping of the model's own are named after the module that wraps theirs
    (``mlp.experts.0.gate_proj.weight`` for ``mlp.experts.routed_experts.w13_weight``)."""
    packed = dict(CONVENTIONAL_PACKED)
    for module in model.modules():  # a multimodal model's language model declares its own
        packed.update(getattr(module, "packed_modules_mapping", None) or {})
    mapping = expert_mapping(model)
    found: dict[str, Any] = {}
    for name, param in model.named_parameters():
        module_path, _, leaf = name.rpartition(".")
        module = model.get_submodule(module_path) if module_path else model
        prefix, _, last = module_path.rpartition(".")
        sizes = getattr(module, "output_sizes", None)
        if last in packed and sizes and len(packed[last]) == len(sizes) and sum(sizes) == param.shape[0]:
            dim = getattr(param, "output_dim", 0) or 0
            for part, piece in zip(packed[last], param.detach().split(list(sizes), dim=dim)):
                found[_join(prefix, part, leaf)] = piece
        elif leaf in ("w13_weight", "w2_weight") and param.dim() == 3:
            base = module_path.rpartition(".")[0] if wrapped else module_path
            found.update(mapped_experts(name, param.detach(), mapping) or _experts(base, leaf, param.detach(), experts))
        else:
            found[name] = param.detach()[: vocabulary(model, name, param.shape[0])] if param.dim() else param.detach()
    mapper = getattr(model, "hf_to_vllm_mapper", None)
    return {_unmap(name, mapper): tensor.clone() for name, tensor in found.items()}


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


def _experts(module_path: str, leaf: str, weight: Any, names: tuple[str, str, str]) -> dict[str, Any]:
    """Per-expert checkpoint tensors of a fused-experts weight: w13 is gate then up, w2 is down."""
    gate, down, up = names
    found: dict[str, Any] = {}
    for expert in range(weight.shape[0]):
        base = f"{module_path}.{expert}"
        if leaf == "w13_weight":
            first, second = weight[expert].chunk(2, dim=0)
            found[f"{base}.{gate}.weight"], found[f"{base}.{up}.weight"] = first, second
        else:
            found[f"{base}.{down}.weight"] = weight[expert]
    return found


def expert_mapping(model: Any) -> list[tuple[str, str, int, str]]:
    """The model's own expert mapping (``get_expert_mapping()``: parameter name part, checkpoint
    name part, expert, shard), which its ``load_weights`` renames checkpoint names by; [] without."""
    try:
        return list(model.get_expert_mapping())
    except Exception:  # noqa: BLE001 - no such method, or one that needs what the tiny model lacks
        return []


def mapped_experts(name: str, weight: Any, mapping: list[tuple[str, str, int, str]]) -> dict[str, Any]:
    """Per-expert checkpoint tensors of the fused-experts parameter ``name`` by the model's own
    ``mapping``, inverted: its parameter part in ``name`` becomes each expert's checkpoint part
    (a layer wrapping its routed experts, ``experts.routed_experts.w13_weight``, loads
    ``experts.0.gate_proj.weight``); w13 is shards w1 then w3, w2 is w2. {} when the mapping does
    not cover every expert and shard of it."""
    shards = ("w1", "w3") if name.endswith("w13_weight") else ("w2",)
    found: dict[str, Any] = {}
    for expert in range(weight.shape[0]):
        pieces = weight[expert].chunk(len(shards), dim=0)
        for shard, piece in zip(shards, pieces):
            parts = [(param, ckpt) for param, ckpt, e, s in mapping if e == expert and s == shard and param in name]
            if not parts:
                return {}
            param, ckpt = max(parts, key=lambda part: len(part[0]))  # the most specific
            found[name.replace(param, ckpt, 1)] = piece
    return found


def _unmap(name: str, mapper: Any) -> str:
    """The checkpoint name ``mapper`` (a WeightsMapper) turns into ``name``: its renames undone."""
    if mapper is None:
        return name
    for table, where in (
        (getattr(mapper, "orig_to_new_suffix", {}), "suffix"),
        (getattr(mapper, "orig_to_new_substr", {}), "substr"),
        (getattr(mapper, "orig_to_new_prefix", {}), "prefix"),
    ):
        for original, new in (table or {}).items():
            if not new:
                continue
            if where == "prefix" and name.startswith(new):
                name = original + name[len(new) :]
                break
            if where == "suffix" and name.endswith(new):
                name = name[: -len(new)] + original
                break
            if where == "substr" and new in name:
                name = name.replace(new, original, 1)
                break
    return name


def top_level(tensors: dict[str, Any], prefix: str = "model.") -> dict[str, Any]:
    """``tensors`` with the ``model.`` prefix taken off: a draft's checkpoint holds its decoder's
    tensors at the top level, and vLLM's EAGLE drafts' ``load_weights`` put them under ``model.``
    (``lm_head`` aside). Tried after the own names; {} when no name has the prefix or two would clash."""
    out = {name[len(prefix) :] if name.startswith(prefix) else name: tensor for name, tensor in tensors.items()}
    return out if len(out) == len(tensors) and out.keys() != tensors.keys() else {}


def respelled(model: Any, tensors: dict[str, Any]) -> dict[str, Any]:
    """``tensors`` with a parameter's own name replaced by its name without the last module
    (``gate_projections.0.weight`` for ``gate_projections.0.gate_proj.weight``: vLLM wraps a tensor
    the checkpoint stores directly) where ``load_weights``, given that name alone, puts the tensor
    into that parameter and no other: the spelling the model's own code renames, as real
    checkpoints have it (another vLLM's generic loading may take the own name where the model's
    code would not). The model's parameters are restored after the tries."""
    import torch

    params = dict(model.named_parameters())
    saved = {name: param.detach().clone() for name, param in params.items()}
    out: dict[str, Any] = {}
    for name, tensor in tensors.items():
        parts = name.split(".")
        direct = ".".join(parts[:-2] + parts[-1:])  # the wrapper module's tensor stored directly
        reaches = len(parts) > 2 and name in params and direct not in tensors and direct not in out
        out[direct if reaches and _reaches(model, direct, tensor, name) else name] = tensor
    with torch.no_grad():  # each try zeroed them: the model keeps its values
        for name, param in params.items():
            param.copy_(saved[name])
    return out


def _reaches(model: Any, name: str, tensor: Any, target: str) -> bool:
    """``load_weights`` given ``name`` alone puts ``tensor`` into the parameter ``target``, says it
    loaded ``target`` (vLLM's loader refuses a checkpoint whose parameters ``load_weights`` does not
    name as loaded), and changes no other parameter (all are zeroed first)."""
    import torch

    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
    try:
        loaded = model.load_weights(iter([(name, tensor.clone())]))
    except Exception:  # noqa: BLE001 - a spelling it refuses does not reach it
        return False
    if loaded is not None and target not in loaded | untracked(model):
        return False
    for other, param in model.named_parameters():
        if other == target:
            if not torch.equal(param.detach(), tensor):
                return False
        elif bool(param.detach().any()):
            return False
    return True


def untracked(model: Any) -> set[str]:
    """The parameters vLLM's loader counts as loaded whatever ``load_weights`` says: those of modules
    whose quant method quantizes online or processes the weights after loading (an unquantized
    model's linear and MoE layers)."""
    names: set[str] = set()
    for prefix, module in model.named_modules():
        method = getattr(module, "quant_method", None)
        if getattr(method, "uses_meta_device", False) or getattr(method, "process_weights_after_loading", None):
            names |= {f"{prefix}.{name}" if prefix else name for name, _ in module.named_parameters()}
    return names


def prove(model: Any, tensors: dict[str, Any]) -> str:
    """ "" when ``load_weights`` takes ``tensors``, restores every parameter exactly and names every
    parameter vLLM's loader tracks as loaded (when it returns the names: the loader checks them);
    else why not. The model's parameters are restored either way."""
    import torch

    saved = {name: param.detach().clone() for name, param in model.named_parameters()}
    try:
        with torch.no_grad():
            for param in model.parameters():
                param.zero_()
        try:
            loaded = model.load_weights(iter([(name, tensor.clone()) for name, tensor in tensors.items()]))
        except Exception as exc:  # noqa: BLE001 - a name it refuses: that is the answer
            return f"load_weights refused them: {first_line(exc)}"
        wrong = [name for name, param in model.named_parameters() if not torch.equal(param.detach(), saved[name])]
        if wrong:
            return f"{len(wrong)} parameter(s) not restored, first {wrong[0]}"
        return unnamed(model, loaded)
    finally:
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_(saved[name])


def saved(out_dir: Path) -> dict[str, Any]:
    """The tensors of the checkpoint in ``out_dir``, by name."""
    from safetensors.torch import load_file

    return load_file(str(out_dir / WEIGHTS))


def accepted(model: Any, tensors: dict[str, Any]) -> str:
    """ "" when ``load_weights`` takes a checkpoint made elsewhere (``tensors``, by name) as vLLM's
    loader does: no error, and every parameter the loader tracks named as loaded; else why not.
    The values are not compared (another class made them); the model's parameters are left as
    loaded."""
    try:
        loaded = model.load_weights(iter(list(tensors.items())))
    except Exception as exc:  # noqa: BLE001 - a name it refuses: that is the answer
        return f"load_weights refused them: {first_line(exc)}"
    return unnamed(model, loaded)


def unnamed(model: Any, loaded: Any) -> str:
    """ "" when ``loaded`` (what ``load_weights`` returned: None when it does not say) names every
    parameter of ``model`` that vLLM's loader tracks; else how many it misses, the first named."""
    if loaded is None:
        return ""
    missing = sorted({name for name, _ in model.named_parameters()} - set(loaded) - untracked(model))
    return f"load_weights does not name {len(missing)} parameter(s) as loaded, first {missing[0]}" if missing else ""


def first_line(exc: BaseException) -> str:
    """``Type: first line``; for a pydantic validation error (its first line only counts the
    errors) the line that says what is wrong."""
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if len(text) > 1 and "validation error" in text[0]:  # then [field,] message [type=...]
        said = text[1] if "[type=" in text[1] or len(text) == 2 else f"{text[1]}: {text[2]}"
        text = [f"{text[0]}: {said.split(' [type=')[0]}"]
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
