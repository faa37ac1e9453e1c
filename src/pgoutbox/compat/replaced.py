"""Names of the replaced libraries that cannot keep their meaning: importing one raises an
``ImportError`` that says what to use instead."""

from __future__ import annotations

from collections.abc import Callable, Mapping


class ReplacedNameError(ImportError):
    """A name of django-jaiminho or django-outbox-pattern that pgoutbox does not provide."""


def replaced_names(module: str, instead: Mapping[str, str]) -> Callable[[str], object]:
    """Return a module ``__getattr__`` raising :class:`ReplacedNameError` for ``instead``'s
    names (each with its advice) and ``AttributeError`` for any other name.

    An ``ImportError``, not an ``AttributeError``: ``from m import name`` would replace the
    latter's message with a generic one.
    """

    def __getattr__(name: str) -> object:
        if name in instead:
            raise ReplacedNameError(f"{module}.{name} has no pgoutbox counterpart: {instead[name]}")
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
