"""The listener's side of ``pgoutbox.notify = 'adaptive'``: the busy lock producers look at.

While the listener holds it, producers skip NOTIFY (a commit-time lock that caps concurrent
writers). The listener keeps draining while it holds the lock, and gives it up only when an
empty claim found no producer that skipped NOTIFY still in flight; then it drains once more.
The protocol and its proof are in migrations_sql/0002_adaptive_notify.sql. Session-level
advisory locks: a listener whose connection dies is no longer busy.

Several listeners: one holds the lock at a time. When it takes it, it NOTIFYs
``pgoutbox_busy``; every other listener of all streams then helps (claims with a bounded
backoff while the lock is held elsewhere), so an event whose producer skipped NOTIFY is taken
within tens of milliseconds by an idle listener even while the busy one is in a long batch.
"""

from __future__ import annotations

from typing import Any

import psycopg

from pgoutbox.db import translate_errors
from pgoutbox.sql import query


def adaptive_mode(conn: psycopg.Connection[Any]) -> bool:
    """Whether ``pgoutbox.notify`` is ``'adaptive'`` for this connection's database and role."""
    with translate_errors():
        row = conn.execute(query("notify_mode")).fetchone()
    return bool(row and row[0] == "adaptive")


class BusyLock:
    """The "busy" advisory lock on the listener's autocommit connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.held = False

    def acquire(self) -> bool:
        """Take the lock unless held; False when another session holds it (producers NOTIFY)."""
        if not self.held:
            self.held = self._call("relay_busy")
        return self.held

    def announce(self) -> None:
        """Tell the other listeners this one is busy: they help until it is idle again."""
        with translate_errors():
            self.conn.execute(query("announce_busy"))

    def held_elsewhere(self) -> bool:
        """Whether another listener holds the lock (producers skip NOTIFY meanwhile)."""
        return self._call("relay_busy_elsewhere")

    def release_if_idle(self) -> bool:
        """Give the lock up unless a producer that skipped NOTIFY has not committed yet."""
        if self.held and self._call("relay_idle"):
            self.held = False
        return not self.held

    def _call(self, name: str) -> bool:
        with translate_errors():
            row = self.conn.execute(query(name)).fetchone()
        return bool(row and row[0])
