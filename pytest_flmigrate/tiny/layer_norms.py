"""Complete a synthesized checkpoint's per-layer norms (stdlib only; synthesize.py runs it in the upstream env).

Some checkpoints store a norm on every decoder layer while transformers' class builds it only on
the layers that use it: A.X-K1's ``post_mlp_layernorm`` is on every layer of the released
checkpoints and of upstream vLLM's model (which applies it on MoE layers only), but transformers'
``AXK1ForCausalLM`` puts it inside the MoE block, so a saved tiny model lacks it on the dense
layer and vLLM refuses to load (``Following weights were not initialized from checkpoint``).
``completions`` names each such norm missing from a layer and the same norm of the first layer
that has it, to be copied: a layer that does not apply the norm is not changed by its values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: a norm directly on a decoder layer: ``<stack>.layers.<index>.<name with "norm">.<weight|bias>``
LAYER_NORM = re.compile(r"^(?P<stack>.*\.layers)\.(?P<index>\d+)\.(?P<norm>[^.]*norm[^.]*\.(?:weight|bias))$")
LAYER = re.compile(r"^(?P<stack>.*\.layers)\.(?P<index>\d+)\.")


def completions(names: Iterable[str]) -> dict[str, str]:
    """``{missing name: name to copy}`` for every layer-level norm some layers of a stack have and others lack."""
    layers: dict[str, set[int]] = {}
    norms: dict[tuple[str, str], list[int]] = {}
    for name in names:
        if (layer := LAYER.match(name)) is not None:
            layers.setdefault(layer["stack"], set()).add(int(layer["index"]))
        if (match := LAYER_NORM.match(name)) is not None:
            norms.setdefault((match["stack"], match["norm"]), []).append(int(match["index"]))
    found: dict[str, str] = {}
    for (stack, norm), having in sorted(norms.items()):
        source = f"{stack}.{min(having)}.{norm}"
        for index in sorted(layers[stack] - set(having)):
            found[f"{stack}.{index}.{norm}"] = source
    return found
