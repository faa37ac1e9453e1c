"""System checks (``manage.py check``; the database ones with ``--database <alias>``).

Ids: ``pgoutbox.E001`` trigger missing or disabled, ``E002`` trigger or functions outdated,
``E003`` migrations not applied, ``E004`` invalid ``PGOUTBOX`` settings, ``E005`` the relay's
database is not a PostgreSQL alias, ``W001`` pending calls of unregistered functions, ``W002``
the database could not be inspected.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from django.conf import settings as django_settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, router

from pgoutbox import registry
from pgoutbox.conf import get_settings
from pgoutbox.models import OutboxEvent
from pgoutbox.schema import inspect_schema, unapplied_migrations
from pgoutbox.sql import query


@checks.register("pgoutbox")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``PGOUTBOX`` (and the replaced libraries' dicts) validate; no database access."""
    try:
        alias = get_settings().database
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="pgoutbox.E004")]
    engine = django_settings.DATABASES.get(alias, {}).get("ENGINE", "")
    if alias not in django_settings.DATABASES:
        problem = f"PGOUTBOX['DATABASE'] is {alias!r}, which is not in DATABASES"
    elif "postgresql" not in engine:
        problem = f"PGOUTBOX['DATABASE'] {alias!r} uses {engine!r}; pgoutbox needs PostgreSQL"
    else:
        return []
    return [checks.Error(problem, hint="Name a PostgreSQL alias.", id="pgoutbox.E005")]


@checks.register(checks.Tags.database)
def check_database(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Schema and backlog of each PostgreSQL alias given with ``--database`` that holds
    pgoutbox's tables."""
    if _run_by_migrate():
        return []
    found: list[checks.CheckMessage] = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "postgresql" or not router.allow_migrate_model(alias, OutboxEvent):
            continue
        try:
            found.extend(_check_alias(alias))
        except DatabaseError as exc:
            # A listener may start during an outage: it waits the database out, so must we.
            found.append(
                checks.Warning(
                    f"database {alias!r} could not be inspected: {exc}".strip(),
                    id="pgoutbox.W002",
                )
            )
    return found


def _run_by_migrate() -> bool:
    """Is Django's ``migrate`` (or a subclass) running these checks?

    ``migrate`` runs the database checks before it migrates: an unmigrated or outdated schema
    must not stop the one command that fixes it. Django passes no context to a check, so the
    caller is found on the stack.
    """
    from django.core.management.commands.migrate import Command as Migrate

    frame = sys._getframe(1)
    while frame is not None:
        if isinstance(frame.f_locals.get("self"), Migrate):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _check_alias(alias: str) -> list[checks.CheckMessage]:
    connection = connections[alias]
    missing = unapplied_migrations(connection)
    if missing:
        return [
            checks.Error(
                f"pgoutbox migrations not applied on {alias!r}: {', '.join(missing)}",
                hint=f"Run: manage.py migrate pgoutbox --database {alias}",
                id="pgoutbox.E003",
            )
        ]
    found: list[checks.CheckMessage] = []
    with connection.cursor() as cursor:
        schema = inspect_schema(cursor)
        cursor.execute(query("pending_call_functions"))
        pending_calls = cursor.fetchall()
    if schema.trigger in ("missing", "disabled", "replica only"):
        found.append(
            checks.Error(
                f"the NOTIFY trigger on pgoutbox_event is {schema.trigger} on {alias!r}: "
                "events are only found by polling",
                hint="ALTER TABLE pgoutbox_event ENABLE TRIGGER pgoutbox_notify_v3, or migrate "
                "pgoutbox again (manage.py migrate pgoutbox zero && manage.py migrate pgoutbox)",
                id="pgoutbox.E001",
            )
        )
    if schema.outdated:
        found.append(
            checks.Error(
                f"pgoutbox's trigger or functions on {alias!r} differ from the shipped SQL: "
                + "; ".join(schema.outdated),
                hint="Apply pgoutbox's migrations; do not edit its functions by hand.",
                id="pgoutbox.E002",
            )
        )
    known = registry.registered()
    for function, count in pending_calls:
        if function in known:
            continue
        # A Django task's name is "task:<module path>" (pgoutbox.tasks).
        module = (function or "").removeprefix(registry.TASK_PREFIX).rpartition(".")[0] or "?"
        found.append(
            checks.Warning(
                f"{count} pending call events on {alias!r} name {function!r}, which no loaded "
                "module registers: they wait for a relay that has it (this one hands them back)",
                hint=f"Add {module!r} to PGOUTBOX['FUNCTION_MODULES'] (or name the function's "
                "module in an app's outbox.py; a Django task's in an app's tasks.py).",
                id="pgoutbox.W001",
            )
        )
    return found
