"""pytest-xdist support: all steps of one model run in order on one worker.

xdist's own ``loadgroup`` renames node ids, which pytest 9.2 no longer allows, so the
controller schedules by scope instead, the scope of a test being the model it is for.
"""

from __future__ import annotations

import re

from xdist.scheduler import LoadScopeScheduling

_PARAMS = re.compile(r"\[([^\]]*)\]$")


def model_of_nodeid(nodeid: str, models: frozenset[str]) -> str | None:
    """The model a suite node id is parametrized with (``test_x[kimi_k25-t1]`` -> kimi_k25)."""
    match = _PARAMS.search(nodeid)
    if not match:
        return None
    return next((part for part in match.group(1).split("-") if part in models), None)


class ModelScheduling(LoadScopeScheduling):
    """Load-scope scheduling where a model's tests form one scope."""

    def __init__(self, config, log=None, *, models: frozenset[str]) -> None:
        super().__init__(config, log)
        self.models = models

    def _split_scope(self, nodeid: str) -> str:
        return model_of_nodeid(nodeid, self.models) or nodeid
