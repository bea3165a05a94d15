"""The step map of DESIGN.md: number, name, the steps each depends on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str
    short: str
    depends: tuple[int, ...]
    implemented: bool


STEPS: dict[int, Step] = {
    1: Step("baseline unit tests", "baseline", (), True),
    2: Step("upstream source and placeholders", "upstream", (), True),
    3: Step("nearest plugin pattern", "patterns", (2,), True),
    4: Step("config bridge and copy-then-patch", "migrate", (2,), True),
    5: Step("register_model() entries", "register", (4,), True),
    6: Step("code review", "review", (4,), True),
    7: Step("regression unit tests", "regression", (1, 5), True),
    8: Step("functional tests", "functional", (5,), True),
    9: Step("benchmark", "benchmark", (5,), True),
    10: Step("serve and request", "serve", (5,), True),
    11: Step("E2E token comparison", "e2e", (10,), True),
}
