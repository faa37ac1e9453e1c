"""The allow-list of functions the relay may run: decorated callables, by import path.

A ``kind = 'call'`` row names its function by import path (``module.qualname``). The relay
looks that name up here and runs only what this process registered by decorating it; it never
imports the module a row names, unpickles or evaluates anything read from the database. An
unknown name is dead-lettered by the relay with the reason.

How a listener process learns the registry: ``PgOutboxConfig.ready()`` imports, at Django
start-up, the ``outbox`` module of every installed app (like admin's ``admin.py``) and every
module listed in ``PGOUTBOX['FUNCTION_MODULES']``. Put decorated functions in one of those, or
import them from one.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from pgoutbox.errors import RegistryError

logger = logging.getLogger(__name__)

# Django tasks (pgoutbox.tasks) are registered under this prefix and their module path.
TASK_PREFIX = "task:"

_lock = threading.Lock()
_functions: dict[str, Callable[..., Any]] = {}


def function_path(func: Callable[..., Any]) -> str:
    """Return the import path a row stores for ``func``: ``module.qualname``."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname:
        raise RegistryError(f"{func!r} has no __module__/__qualname__; decorate a function")
    return f"{module}.{qualname}"


def register(func: Callable[..., Any]) -> str:
    """Allow the relay to run ``func``; return its import path.

    Registering another function under a path already taken replaces it (a module imported
    twice defines its functions twice); the last definition wins, as it would for an import.
    """
    path = function_path(func)
    register_as(path, func)
    return path


def register_as(path: str, func: Callable[..., Any]) -> None:
    """Allow the relay to run ``func`` under a name of the caller's choosing (a Django task's
    ``task:<module.qualname>``); the last registration of a name wins, as in :func:`register`."""
    with _lock:
        _functions[path] = func


def lookup(path: str) -> Callable[..., Any] | None:
    """Return the function registered under ``path``, or None. Never imports anything."""
    with _lock:
        return _functions.get(path)


def registered() -> frozenset[str]:
    """Return every registered import path."""
    with _lock:
        return frozenset(_functions)


def load_function_modules(modules: Iterable[str]) -> None:
    """Import the modules that define decorated functions, so that they register.

    The names come from settings (``FUNCTION_MODULES``), never from the database. A module that
    cannot be imported raises: a listener that would dead-letter every event of a function it
    should know must not start.
    """
    for name in modules:
        importlib.import_module(name)


def autodiscover() -> None:
    """Import the ``outbox`` module of every installed app (those that have one)."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("outbox")
