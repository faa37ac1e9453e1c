"""Is the database's pgoutbox schema the one this code ships? Trigger, functions, migrations.

Each function pgoutbox installs carries, in ``COMMENT ON FUNCTION``, the sha256 of its body as
the shipped SQL defines it (``pgoutbox sha256:<hex>``). The code computes the same hash from
``migrations_sql/``, so a database installed from older SQL, a function edited by hand, or a
trigger left at an older version is reported as *outdated*.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from pgoutbox.sql import migrations_dir, query

CURRENT_TRIGGER = "pgoutbox_notify_v3"
CURRENT_FUNCTIONS = (
    "pgoutbox_channel_v1",
    "pgoutbox_notify_v3",
    "pgoutbox_relay_busy_v2",
    "pgoutbox_relay_idle_v2",
    "pgoutbox_body_v1",
    "pgoutbox_send_v1",
    "pgoutbox_send_v2",
)
COMMENT_PREFIX = "pgoutbox sha256:"
# pg_trigger.tgenabled: 'O' fires (origin), 'A' always, 'R' on replicas only, 'D' disabled.
_TRIGGER_STATES = {"O": "installed", "A": "installed", "R": "replica only", "D": "disabled"}

# CREATE FUNCTION name(...) ... AS $$body$$ (or $tag$body$tag$): pg_proc.prosrc is ``body``.
_FUNCTION = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)\s*\(.*?\bAS\s+(\$\w*\$)(.*?)\2",
    re.DOTALL | re.IGNORECASE,
)


def body_hash(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@functools.cache
def shipped_hashes() -> dict[str, str]:
    """sha256 of each current function's body, as the last migration defining it has it."""
    bodies: dict[str, str] = {}
    for path in sorted(migrations_dir().glob("[0-9]*.sql")):
        if path.name.endswith(".down.sql"):
            continue
        for name, _quote, body in _FUNCTION.findall(path.read_text(encoding="utf-8")):
            bodies[name] = body
    missing = [name for name in CURRENT_FUNCTIONS if name not in bodies]
    if missing:
        raise FileNotFoundError(f"migrations_sql defines no {missing}")
    return {name: body_hash(bodies[name]) for name in CURRENT_FUNCTIONS}


@dataclass(frozen=True)
class SchemaState:
    """``trigger``: installed, disabled, replica only, missing or outdated; ``outdated``: why."""

    trigger: str
    outdated: list[str] = field(default_factory=list)


def inspect_schema(cursor: Any) -> SchemaState:
    """Compare the trigger and functions in the database with the shipped ones (a Django
    cursor on the database to inspect)."""
    cursor.execute(query("schema_triggers"))
    triggers = {name: (enabled, function) for name, enabled, function in cursor.fetchall()}
    cursor.execute(query("schema_functions"), {"names": list(CURRENT_FUNCTIONS)})
    live = {name: (digest, comment) for name, digest, comment in cursor.fetchall()}
    outdated: list[str] = []
    for name, expected in shipped_hashes().items():
        if name not in live:
            outdated.append(f"function {name}() is missing")
            continue
        digest, comment = live[name]
        if comment != COMMENT_PREFIX + expected:
            outdated.append(f"function {name}() was installed from other SQL (comment {comment!r})")
        elif digest != expected:
            outdated.append(f"function {name}() was changed after it was installed")
    current = triggers.get(CURRENT_TRIGGER)
    if current is None:
        older = sorted(triggers)
        if older:
            outdated.append(f"trigger {older[-1]} is installed instead of {CURRENT_TRIGGER}")
            return SchemaState("outdated", outdated)
        return SchemaState("missing", outdated)
    enabled, function = current
    if function != CURRENT_TRIGGER:
        outdated.append(f"trigger {CURRENT_TRIGGER} runs {function}()")
    state = _TRIGGER_STATES.get(enabled, "disabled")
    if state == "installed" and outdated:
        state = "outdated"
    return SchemaState(state, outdated)


def unapplied_migrations(connection: Any) -> list[str]:
    """Names of pgoutbox's Django migrations not applied on ``connection``."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return sorted(
        name
        for app, name in loader.disk_migrations
        if app == "pgoutbox" and (app, name) not in loader.applied_migrations
    )
