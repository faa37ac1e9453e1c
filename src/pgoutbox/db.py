"""The only place that opens psycopg connections for pgoutbox's own processes.

The listener and the relay never use Django's connection handling (atomic blocks,
``CONN_MAX_AGE``, test transactions): they open their own connections from the parameters of a
``DATABASES`` alias, with TCP keepalives so a half-open connection is noticed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from pgoutbox.errors import DatabaseError
from pgoutbox.sql import query

# A dead peer is noticed within about keepalives_idle + interval * count seconds.
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


# Django's DATABASES keys and the libpq keywords they become.
_LIBPQ_KEYS = {
    "HOST": "host",
    "PORT": "port",
    "USER": "user",
    "PASSWORD": "password",
    "NAME": "dbname",
}

# The name of the relay's sessions in pg_stat_activity, how outbox_status finds relays; an
# application_name the settings give is kept after it ("pgoutbox:orders-app").
RELAY_APPLICATION_NAME = "pgoutbox"
_MAX_NAME_BYTES = 63  # PostgreSQL cuts an application_name to NAMEDATALEN - 1 bytes

# The relay's statements are short; anything longer is stuck (a lock, a dead disk).
_STATEMENT_TIMEOUT_SECONDS = 30.0
# Above the longest a message batch may wait for the broker.
_TRANSACTION_MARGIN_SECONDS = 10.0
# The longest timeout PostgreSQL takes (an int of milliseconds).
_MAX_TIMEOUT_SECONDS = 2_147_483.0


def connection_params(alias: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return psycopg connection keyword arguments for a Django database alias, with
    ``overrides`` (DATABASES-style keys: HOST, PORT, USER, PASSWORD, NAME, OPTIONS) applied:
    how the relay reaches the same database directly when the alias goes through a pooler."""
    params = dict(connections[alias].get_connection_params())
    for key, value in (overrides or {}).items():
        if key == "OPTIONS":
            params.update(value)
        else:
            params[_LIBPQ_KEYS[key]] = str(value) if key == "PORT" else value
    # Django adds its own options (cursor factory, server-side binding) for its wrapper only.
    for key in ("cursor_factory", "context", "prepare_threshold", "server_side_binding"):
        params.pop(key, None)
    params["application_name"] = relay_application_name(params.get("application_name"))
    return {**_KEEPALIVES, **params}


def relay_application_name(configured: Any) -> str:
    """``pgoutbox``, or ``pgoutbox:<configured>`` when the settings name the application
    (``OPTIONS["application_name"]`` of the alias or of ``RELAY_CONNECTIONS``), cut to the
    63 bytes PostgreSQL keeps: how ``outbox_status`` recognises a relay whatever the settings
    say. Raises ``ImproperlyConfigured`` for a name that is not a str."""
    if configured is None or configured in ("", RELAY_APPLICATION_NAME):
        return RELAY_APPLICATION_NAME
    if not isinstance(configured, str):
        raise ImproperlyConfigured(
            f"DATABASES OPTIONS application_name must be a str, got {configured!r}"
        )
    prefix = f"{RELAY_APPLICATION_NAME}:"
    name = configured if configured.startswith(prefix) else prefix + configured
    return name.encode()[:_MAX_NAME_BYTES].decode("utf-8", "ignore")


def connect(params: dict[str, Any], *, autocommit: bool) -> psycopg.Connection[Any]:
    """Open a connection; a failure becomes :class:`DatabaseError`."""
    try:
        return psycopg.connect(**params, autocommit=autocommit)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc


def connect_relay(
    params: dict[str, Any], *, autocommit: bool, broker_wait: float
) -> psycopg.Connection[Any]:
    """Open one of the relay's own sessions and pin its settings: READ COMMITTED, server-side
    TCP keepalives, a statement timeout, and an idle-in-transaction timeout above
    ``broker_wait`` (the longest a message batch waits for the broker), whatever the
    database's or role's defaults are."""
    conn = connect(params, autocommit=autocommit)
    idle = min(broker_wait + _TRANSACTION_MARGIN_SECONDS, _MAX_TIMEOUT_SECONDS)
    try:
        with translate_errors():
            conn.execute(
                query("configure_relay_session"),
                {
                    "idle_ms": str(int(idle * 1000)),
                    "statement_ms": str(int(_STATEMENT_TIMEOUT_SECONDS * 1000)),
                },
            )
            if not autocommit:
                conn.commit()  # a session setting made in a rolled-back transaction is undone
    except DatabaseError:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn psycopg's errors into :class:`DatabaseError`, keeping the cause."""
    try:
        yield
    except psycopg.Error as exc:
        raise DatabaseError(str(exc).strip() or type(exc).__name__) from exc
