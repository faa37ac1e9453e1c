"""The relay's reads and writes of ``pgoutbox_event``, one transaction per batch.

A batch is claimed with ``FOR UPDATE SKIP LOCKED`` and stays locked while it is published;
:meth:`EventStore.finish_batch` deletes what the broker confirmed, records failures and
commits. If the process dies in between, the locks go with its connection and the rows are
claimed again: at-least-once, never lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row

from pgoutbox.db import translate_errors
from pgoutbox.policy import Failure, failure_params
from pgoutbox.sql import query


@dataclass(frozen=True)
class EventRow:
    """A claimed row of ``pgoutbox_event``, as stored (not yet validated)."""

    id: int
    stream: str
    kind: str
    destination: str | None
    body: bytes
    headers: Any
    message_id: uuid.UUID
    attempts: int
    function: str | None = None  # kind 'call': the registered function's import path
    args: Any = None  # kind 'call': {"args": [...], "kwargs": {...}}


class EventStore:
    """Claims, deletes and reschedules events on one non-autocommit connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def claim_batch(self, streams: Sequence[str], limit: int) -> list[EventRow]:
        """Lock and return up to ``limit`` due pending events, oldest first."""
        with translate_errors(), self.conn.cursor(row_factory=class_row(EventRow)) as cur:
            cur.execute(query("claim_batch"), {"streams": list(streams), "limit": limit})
            return cur.fetchall()

    def claim_ordered(self, streams: Sequence[str], limit: int) -> list[EventRow]:
        """Lock every keep-order stream no other relay holds; return their runnable rows.

        Rows come stream by stream, each stream's in id order from its head. The streams'
        advisory locks are held until :meth:`finish_batch` commits.
        """
        rows: list[EventRow] = []
        with translate_errors():
            with self.conn.cursor() as cur:
                cur.execute(query("ordered_streams"), {"streams": list(streams)})
                names = [name for (name,) in cur.fetchall()]
            for name in names:
                with self.conn.cursor() as cur:
                    cur.execute(query("lock_ordered_stream"), {"stream": name})
                    locked = cur.fetchone()
                if not locked or not locked[0]:
                    continue
                # A new statement, so a new snapshot: it sees what the previous holder committed.
                with self.conn.cursor(row_factory=class_row(EventRow)) as cur:
                    cur.execute(query("claim_ordered"), {"stream": name, "limit": limit})
                    rows.extend(cur.fetchall())
        return rows

    def finish_batch(
        self,
        delivered: Iterable[int],
        failures: Sequence[Failure],
        *,
        keep_sent: bool = False,
    ) -> None:
        """Delete delivered events (mark them sent when ``keep_sent``), record failures, and
        commit the batch's transaction."""
        delivered_ids = list(delivered)
        with translate_errors():
            with self.conn.cursor() as cur:
                if delivered_ids:
                    done = query("mark_sent" if keep_sent else "delete_events")
                    cur.execute(done, {"ids": delivered_ids})
                if failures:
                    cur.execute(query("record_failures"), failure_params(list(failures)))
            self.conn.commit()

    def abandon_batch(self) -> None:
        """Roll back: every claimed row is pending again, untouched."""
        with translate_errors():
            self.conn.rollback()
