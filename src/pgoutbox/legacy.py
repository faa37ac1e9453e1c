"""Switching from a replaced library without losing or repeating messages.

``import_outbox_pattern`` moves django-outbox-pattern's pending ``published`` rows into
``pgoutbox_event`` (keeping their ids as message ids, which were their ``dop-msg-id``) and copies
``received`` ids into pgoutbox's inbox, in one transaction: after it, pgoutbox's relay sends
what was pending, and pgoutbox's consumer skips redeliveries of what was already processed.
``pending_jaiminho`` only lists django-jaiminho's unsent events: their rows hold pickled
functions, which pgoutbox never loads; drain them with jaiminho first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections, transaction
from psycopg import sql

from pgoutbox.consumer.subscriber import queue_name_of
from pgoutbox.errors import PgOutboxError
from pgoutbox.sql import query

# Inbox columns filled from django-outbox-pattern's Received; "consumer" (the queue) when the
# inbox is keyed per consumer.
_INBOX_COLUMNS = ("message_id", "destination", "body", "headers", "status", "received_at")


class LegacyImportError(PgOutboxError):
    """The old library's tables are missing or hold rows pgoutbox cannot take over."""


@dataclass(frozen=True)
class OutboxPatternImport:
    moved: int  # pending published rows now in pgoutbox_event
    expired: int  # of them, past expires_at: django-outbox-pattern would never have sent them
    failed_left: int  # FAILED published rows, left where they are
    received: int  # received ids in the old inbox
    copied: int  # of them, new in pgoutbox_received (the others were there already)

    def describe(self) -> str:
        return (
            f"moved {self.moved} pending events ({self.expired} past expires_at) into "
            f"pgoutbox_event; left {self.failed_left} FAILED rows in published; copied "
            f"{self.copied} of {self.received} received ids into pgoutbox_received"
        )


def _one(name: str, cursor: Any, params: dict[str, Any] | None = None) -> Any:
    cursor.execute(query(name), params or {})
    return cursor.fetchone()


def _require_table(cursor: Any, table: str, library: str) -> None:
    if not _one("table_exists", cursor, {"table": table})[0]:
        raise LegacyImportError(f"there is no {library} table {table!r} in this database")


def import_outbox_pattern(*, using: str, consumer: str | None = None) -> OutboxPatternImport:
    """Move pending ``published`` rows and copy ``received`` ids, in one transaction on
    ``using``; running it again moves and copies only what is new.

    ``consumer`` names the queue the copied ids belong to when the inbox is per consumer
    (default: each message's destination's last segment, as ``subscribe`` names its queue).
    Raises :class:`LegacyImportError`, changing nothing, when a table is missing or a pending
    row's destination is one pgoutbox's relay would refuse.
    """
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        _require_table(cursor, "published", "django-outbox-pattern")
        _require_table(cursor, "received", "django-outbox-pattern")
        cursor.execute(query("published_bad_destinations"))
        bad = [row[0] for row in cursor.fetchall()]
        if bad:
            raise LegacyImportError(
                f"pending published rows have destinations pgoutbox cannot publish to (they must "
                f"start with '/', e.g. '/exchange/orders/created'): {bad}; fix them with an "
                "UPDATE and run the import again"
            )
        pending, expired, failed = _one("published_counts", cursor)
        cursor.execute(query("move_published"))
        moved = len(cursor.fetchall())
        assert moved == pending, (moved, pending)  # every pending row moved, none twice
        received, copied = _copy_received(cursor, using, consumer)
    return OutboxPatternImport(moved, expired, failed, received, copied)


def _copy_received(cursor: Any, using: str, consumer: str | None) -> tuple[int, int]:
    cursor.execute(query("inbox_columns"))
    existing = {name: required for name, required in cursor.fetchall()}
    columns = [c for c in _INBOX_COLUMNS if c in existing]
    if "consumer" in existing:
        columns.append("consumer")
    unknown = sorted(c for c, required in existing.items() if required and c not in columns)
    if unknown or "message_id" not in columns:
        raise LegacyImportError(
            f"pgoutbox_received has required columns this import cannot fill: {unknown}"
        )
    insert = sql.SQL(
        "INSERT INTO pgoutbox_received ({}) VALUES ({}) ON CONFLICT DO NOTHING"
    ).format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    statement = insert.as_string(connections[using].connection)
    cursor.execute(query("received_rows"))
    rows = [_inbox_row(columns, row, consumer) for row in cursor.fetchall()]
    copied = 0
    for row in rows:
        cursor.execute(statement, row)
        copied += cursor.rowcount
    return len(rows), copied


def _inbox_row(columns: Sequence[str], row: tuple[Any, ...], consumer: str | None) -> list[Any]:
    msg_id, headers, destination, body, failed, added = row
    values = {
        "message_id": msg_id,
        "destination": destination,
        "body": body.encode("utf-8"),
        "headers": headers,
        "status": "failed" if failed else "succeeded",
        "received_at": added,
        "consumer": consumer or queue_name_of(destination),
    }
    return [values[c] for c in columns]


JAIMINHO_DRAIN_ADVICE = (
    "django-jaiminho events are pending; pgoutbox never loads their pickled functions. Drain "
    "them with jaiminho first: keep django-jaiminho in INSTALLED_APPS above pgoutbox (so "
    "manage.py events_relay is still jaiminho's) and run events_relay, once per stream with "
    "--stream NAME, until this command finds nothing pending; then remove django-jaiminho"
)


@dataclass(frozen=True)
class JaiminhoPending:
    stream: str
    strategy: str
    count: int
    oldest: datetime

    def describe(self) -> str:
        strategy = self.strategy or "the global"
        return (
            f"pending: {self.count} on stream {self.stream!r} ({strategy} strategy), "
            f"oldest {self.oldest:%Y-%m-%d %H:%M:%S}"
        )


def pending_jaiminho(*, using: str) -> list[JaiminhoPending]:
    """Return django-jaiminho's unsent events per stream and strategy (nothing is imported:
    the rows hold pickled functions). Raises :class:`LegacyImportError` without its table."""
    with connections[using].cursor() as cursor:
        _require_table(cursor, "jaiminho_event", "django-jaiminho")
        cursor.execute(query("jaiminho_pending"))
        return [JaiminhoPending(*row) for row in cursor.fetchall()]
