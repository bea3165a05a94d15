"""The step map (docs/procedure.md): number, name, the steps each depends on, and whether the step
runs in the env of ``--vllm-python`` (a step that does not is never blocked by that env's problems)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str
    short: str
    depends: tuple[int, ...]
    in_env: bool = False


STEPS: dict[int, Step] = {
    1: Step("baseline unit tests", "baseline", (), in_env=True),
    2: Step("upstream source and placeholders", "upstream", ()),
    3: Step("nearest plugin pattern", "patterns", (2,)),
    4: Step("config bridge and copy-then-patch", "migrate", (2,)),
    5: Step("register_model() entries", "register", (4,)),
    6: Step("code review", "review", (4,)),
    7: Step("regression unit tests", "regression", (1, 5), in_env=True),
    8: Step("functional tests", "functional", (5,), in_env=True),
    9: Step("benchmark", "benchmark", (5,), in_env=True),
    10: Step("serve and request", "serve", (5,), in_env=True),
    11: Step("E2E token comparison", "e2e", (10,), in_env=True),
}
