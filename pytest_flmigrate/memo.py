"""Memoized steps: each no-argument method runs once per instance, its result or its error kept.

``run.unit()`` performs step 2's work (or re-raises its error); ``run.unit.result`` is what the
reports read: the result when the step ran and succeeded, else None. Reading ``.result`` through
the attribute (not a method name in a string) makes a renamed step an AttributeError, never a
field that silently goes missing from ``summary.json``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from pytest_flmigrate.errors import FlmigrateError

T = TypeVar("T")


class memoized(Generic[T]):  # noqa: N801 - used as a decorator, like functools.cached_property
    """Decorator: cache a no-argument method's result, or its FlmigrateError, on the instance."""

    def __init__(self, method: Callable[[Any], T]) -> None:
        self.method = method
        self.attribute = f"_memo_{method.__name__}"
        functools.update_wrapper(self, method)  # type: ignore[arg-type]

    @overload
    def __get__(self, instance: None, owner: type) -> memoized[T]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> Memo[T]: ...

    def __get__(self, instance: object | None, owner: type) -> memoized[T] | Memo[T]:
        if instance is None:
            return self
        return Memo(self, instance)


class Memo(Generic[T]):
    """One instance's memoized step: call it to perform the step, read ``result`` to report it."""

    def __init__(self, step: memoized[T], instance: object) -> None:
        self.step = step
        self.instance = instance

    def __call__(self) -> T:
        outcome = self._outcome()
        if outcome is None:
            outcome = self._perform()
        ok, value = outcome
        if not ok:
            raise value
        return value

    def _perform(self) -> tuple[bool, Any]:
        outcome: tuple[bool, Any]
        try:
            outcome = (True, self.step.method(self.instance))
        except FlmigrateError as exc:
            outcome = (False, exc)
        setattr(self.instance, self.step.attribute, outcome)
        return outcome

    @property
    def result(self) -> T | None:
        """The step's result if it ran and succeeded, else None (nothing is computed here)."""
        outcome = self._outcome()
        return outcome[1] if outcome is not None and outcome[0] else None

    def _outcome(self) -> tuple[bool, Any] | None:
        return getattr(self.instance, self.step.attribute, None)
