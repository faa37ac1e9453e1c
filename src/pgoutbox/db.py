"""The only place that opens psycopg connections for pgoutbox's own processes.

The listener and the relay never use Django's connection handling (atomic blocks,
``CONN_MAX_AGE``, test transactions): they open their own connections from the parameters of a
``DATABASES`` alias, with TCP keepalives so a half-open connection is noticed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from django.db import connections

from pgoutbox.errors import DatabaseError

# A dead peer is noticed within about keepalives_idle + interval * count seconds.
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def connection_params(alias: str) -> dict[str, Any]:
    """Return psycopg connection keyword arguments for a Django database alias."""
    params = dict(connections[alias].get_connection_params())
    # Django adds its own options (cursor factory, server-side binding) for its wrapper only.
    for key in ("cursor_factory", "context", "prepare_threshold", "server_side_binding"):
        params.pop(key, None)
    params.setdefault("application_name", "pgoutbox")
    return {**_KEEPALIVES, **params}


def connect(params: dict[str, Any], *, autocommit: bool) -> psycopg.Connection[Any]:
    """Open a connection; a failure becomes :class:`DatabaseError`."""
    try:
        return psycopg.connect(**params, autocommit=autocommit)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn psycopg's errors into :class:`DatabaseError`, keeping the cause."""
    try:
        yield
    except psycopg.Error as exc:
        raise DatabaseError(str(exc).strip() or type(exc).__name__) from exc
