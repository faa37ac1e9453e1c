"""Factory fixtures: a test makes as many of a thing as it needs; teardown closes them all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def closing_factory(make: Callable[P, T], close: Callable[[T], object]) -> Iterator[Callable[P, T]]:
    """Yield ``make`` wrapped to remember what it made; at teardown ``close`` each, in order.

    Use in a fixture as ``yield from closing_factory(make, close)``.
    """
    made: list[T] = []

    def factory(*args: P.args, **kwargs: P.kwargs) -> T:
        item = make(*args, **kwargs)
        made.append(item)
        return item

    yield factory
    for item in made:
        close(item)
