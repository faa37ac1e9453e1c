"""The relay's reads and writes of ``pgoutbox_event``: one store per lane, one connection each.

:class:`MessageStore` (the message lane) claims a batch with ``FOR UPDATE SKIP LOCKED``, keeps
it locked while the broker confirms it, then deletes what was confirmed, records failures and
commits: one short transaction bounded by the broker wait, with no user code in it. If the
process dies in between, the locks go with its connection and the rows are claimed again.

:class:`CallStore` (the calls lane) leases calls in committed statements: the lease (an
``available_at`` in the future, one attempt counted) keeps other relays off a call while it
runs in a transaction of its own, and hands it back when this relay dies.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq

from pgoutbox.db import translate_errors
from pgoutbox.errors import TASK_ABANDONED_PATH, DatabaseError
from pgoutbox.policy import Failure, failure_params
from pgoutbox.registry import TASK_PREFIX
from pgoutbox.sql import query


@dataclass(frozen=True)
class EventRow:
    """A claimed row of ``pgoutbox_event``, as stored (not yet validated).

    ``attempts`` is the count stored at the claim: for a leased call it includes the attempt
    the lease counted. ``lease`` (calls) is the ``available_at`` the lease set: its token.
    """

    id: int
    stream: str
    kind: str
    destination: str | None
    body: bytes
    headers: Any
    message_id: uuid.UUID
    attempts: int
    function: str | None = None  # kind 'call': the registered function's import path
    args: Any = None  # kind 'call': {"args": [...], "kwargs": {...}, "using": alias}
    lease: datetime.datetime | None = None
    created_at: datetime.datetime | None = None  # messages: for the commit-to-publish metric
    priority: int = 0  # calls: leased highest first (Django tasks' priority)
    # A leased Django task: its result row as leased (the columns of task_result_by_event_id).
    task_result: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Claim:
    """A message batch: the rows to publish and how many were locked (``claimed`` >
    ``len(rows)`` when the byte bound cut the batch short: more are waiting)."""

    rows: list[EventRow]
    claimed: int


_ROW_FIELDS = (
    "id",
    "stream",
    "kind",
    "destination",
    "body",
    "headers",
    "message_id",
    "attempts",
    "function",
    "args",
    "created_at",
)


# The claim is prepared once per session (SQL PREPARE); a session that loses it goes through a
# transaction pooler, where each statement may reach another server session.
_LOST_CLAIM = (
    "the relay's session lost its prepared claim (pgoutbox_claim_batch): it goes through a "
    "connection pooler in transaction mode; give the relay a direct connection to PostgreSQL "
    "with PGOUTBOX['RELAY_CONNECTIONS']"
)


class MessageStore:
    """Claims, deletes and reschedules messages on one connection of its own.

    The session runs in autocommit mode with explicit transactions, so that a batch's
    transaction begins with its claim and ends with its delete in one round trip each (four
    with a driver-managed transaction: BEGIN, claim, delete, COMMIT).
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        with translate_errors():
            if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                conn.rollback()
            conn.autocommit = True
            # psycopg's own prepared statements are off here: on every ROLLBACK (an empty
            # claim) it would DEALLOCATE ALL of them, the claim's included.
            conn.prepare_threshold = None
            conn.execute(query("prepare_claim_batch"))
        self.conn = conn
        self._claims: dict[tuple[tuple[str, ...], int, int], bytes] = {}

    def begin(self) -> None:
        """Begin a transaction (the ordered claim's); :meth:`finish_batch` or
        :meth:`abandon_batch` ends it."""
        with translate_errors():
            self.conn.execute(query("begin_transaction"))

    def claim_batch(self, streams: Sequence[str], limit: int, max_bytes: int) -> Claim:
        """Begin a transaction and lock and return up to ``limit`` due pending messages (about
        ``max_bytes`` of body, at least one), oldest first. The transaction stays open until
        :meth:`finish_batch` or :meth:`abandon_batch`."""
        key = (tuple(streams), limit, max_bytes)
        statement = self._claims.get(key)
        with translate_errors():
            if statement is None:
                # The same few parameters every time: bound once, not on every claim.
                params = {"streams": list(streams), "limit": limit, "max_bytes": max_bytes}
                bound = psycopg.ClientCursor(self.conn).mogrify(query("claim_batch"), params)
                statement = self._claims[key] = bound.encode()
            try:
                cur = self.conn.execute(statement)  # no parameters: one simple query
            except psycopg.errors.InvalidSqlStatementName as exc:
                raise DatabaseError(_LOST_CLAIM) from exc
            cur.nextset()  # past BEGIN's result
            fetched = cur.fetchall()
        # claim_batch's columns: EventRow's first ten fields, created_at, the count.
        rows = [
            EventRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], created_at=r[10])
            for r in fetched
        ]
        return Claim(rows, claimed=int(fetched[0][-1]) if fetched else 0)

    def finish_batch(self, delivered: Iterable[int], failures: Sequence[Failure]) -> None:
        """Delete delivered messages, record failures, and commit the batch's transaction.

        Also how a batch whose transaction was lost is settled after a reconnect: what the
        broker confirmed is deleted, the rest counted; rows another relay holds are left to it.
        """
        ids = list(delivered)
        if self.conn.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            self.begin()  # settling a lost batch on a new connection
        with translate_errors():
            if ids and not failures:
                # The common case in one round trip instead of two; the ids go as the text of
                # a bigint[] (cheaper to bind than a list adapted element by element).
                with psycopg.ClientCursor(self.conn) as cur:
                    text = "{" + ",".join(map(str, ids)) + "}"
                    cur.execute(query("delete_events_and_commit"), {"ids": text})
                return
            self._write(ids, failures)
            self.conn.commit()

    def abandon_batch(self) -> None:
        """Roll back: every claimed row is pending again, untouched."""
        with translate_errors():
            self.conn.rollback()

    def _write(self, delivered: list[int], failures: Sequence[Failure]) -> None:
        with self.conn.cursor() as cur:
            if delivered:
                cur.execute(query("delete_events"), {"ids": delivered})
            if failures:
                cur.execute(query("record_failures"), failure_params(failures))


def claim_stream_run(
    cur: psycopg.Cursor[Any], stream: str, limit: int, *, calls: bool
) -> list[EventRow]:
    """Lock an ordered stream's runnable rows of one kind (calls, or messages) and return
    them: from its head, in id order, up to the first one not due; none when its head is held
    by another session or not due. The caller holds the stream's relay lock."""
    cur.execute(query("claim_ordered"), {"stream": stream, "limit": limit, "calls": calls})
    rows: list[EventRow] = []
    for *fields, due, is_head in cur.fetchall():
        if not due or (not rows and not is_head):
            break
        rows.append(EventRow(**dict(zip(_ROW_FIELDS, fields, strict=True))))
    return rows


def _leased_row(columns: Sequence[Any]) -> EventRow:
    """A row of ``lease_calls``: the leased call's 12 columns, whether it is a Django task,
    then that task's result row as leased (the columns of ``task_result_by_event_id``)."""
    (id_, stream, kind, destination, body, headers, message_id, attempts, function, args,
     lease, priority, is_task, *result) = columns  # fmt: skip
    return EventRow(
        id_,
        stream,
        kind,
        destination,
        body,
        headers,
        message_id,
        attempts,
        function,
        args,
        lease=lease,
        priority=priority,
        task_result=tuple(result) if is_task else (),
    )


def _lease_params(
    streams: Sequence[str], limit: int, lease: float, ids: list[int] | None
) -> dict[str, Any]:
    """``lease_calls``'s parameters: due calls of ``streams`` (``ids`` None) or these rows."""
    return {
        "streams": list(streams),
        "limit": limit,
        "lease": lease,
        "ids": ids,
        "task_prefix": TASK_PREFIX,
        "abandoned": TASK_ABANDONED_PATH,
    }


class CallStore:
    """Leases calls on one autocommit connection; every statement commits at once."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        if not conn.autocommit:
            raise ValueError("the calls lane's connection must be in autocommit mode")
        self.conn = conn

    def lease_calls(self, streams: Sequence[str], limit: int, lease: float) -> list[EventRow]:
        """Lease up to ``limit`` due calls (not keep-order), highest priority first, then
        oldest; the Django tasks among them show RUNNING (pgoutbox.tasks) at once."""
        with translate_errors(), self.conn.cursor() as cur:
            cur.execute(query("lease_calls"), _lease_params(streams, limit, lease, None))
            rows = [_leased_row(r) for r in cur.fetchall()]
        return sorted(rows, key=lambda row: (-row.priority, row.id))

    def ordered_streams(self, streams: Sequence[str]) -> list[str]:
        """Keep-order streams whose head is due."""
        with translate_errors(), self.conn.cursor() as cur:
            cur.execute(
                query("ordered_streams"),
                {"streams": list(streams), "calls": True, "limit": None},
            )
            return [name for (name,) in cur.fetchall()]

    def lease_ordered(self, stream: str, limit: int, lease: float) -> list[EventRow] | None:
        """Lease a keep-order stream's runnable rows: from its head, in id order, up to the
        first one not due. None when another relay is leasing it right now (come back soon);
        an empty list when its head is held, leased or not due."""
        with translate_errors(), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(query("lock_ordered_stream"), {"stream": stream})
            locked = cur.fetchone()
            if not locked or not locked[0]:
                return None
            rows = claim_stream_run(cur, stream, limit, calls=True)
            if not rows:
                return []
            cur.execute(
                query("lease_calls"), _lease_params((), len(rows), lease, [r.id for r in rows])
            )
            leased = {r.id: r for r in map(_leased_row, cur.fetchall())}
        return [leased[row.id] for row in rows]

    def release(self, rows: Sequence[EventRow]) -> None:
        """Hand back leased rows that were not run: due again, their attempt given back."""
        if not rows:
            return
        with translate_errors():
            self.conn.execute(
                query("release_leases"),
                {"ids": [r.id for r in rows], "leases": [r.lease for r in rows]},
            )

    def hand_back(self, row: EventRow, delay: float, reason: str) -> None:
        """Hand back a leased call this relay cannot run: its attempt given back (a Django task
        READY again), due after ``delay`` seconds, ``reason`` its last error."""
        with translate_errors(), self.conn.transaction():
            self.conn.execute(query("release_leases"), {"ids": [row.id], "leases": [row.lease]})
            self.conn.execute(
                query("postpone_released_call"), {"id": row.id, "delay": delay, "error": reason}
            )

    def record_failures(self, failures: Sequence[Failure]) -> int:
        """Record failures the calls lane writes itself (a call whose own transaction was lost,
        one that cannot run, one buried after its relays died), with the error in the results
        of the Django tasks among them; return how many rows were written (rows another
        session still locks are skipped)."""
        if not failures:
            return 0
        with translate_errors(), self.conn.transaction():
            params = failure_params(failures)
            recorded = {id_ for (id_,) in self.conn.execute(query("record_failures"), params)}
            lost = [f for f in failures if f.event_id in recorded]
            if lost:  # Django tasks among them: their results say so too
                self.conn.execute(
                    query("task_attempts_lost"),
                    {
                        "ids": [f.event_id for f in lost],
                        "errors": [f.error for f in lost],
                        "deads": [f.dead for f in lost],
                        "abandoned": TASK_ABANDONED_PATH,
                    },
                )
            return len(recorded)
