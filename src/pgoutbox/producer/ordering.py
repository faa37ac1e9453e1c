"""Producers of keep-order streams: serialized per stream, without deadlocks between streams.

A producer of a keep-order stream holds the stream's advisory lock from its insert to its
commit, so ids of one stream are drawn in commit order. Two transactions writing streams A
and B in opposite orders would each wait for the other's lock (PostgreSQL's ``deadlock
detected`` after a second). So a transaction that already holds a keep-order stream does not
wait unboundedly for a second one: it tries for a bounded time, then raises
:class:`~pgoutbox.errors.KeepOrderConflict` naming both streams. Of two such transactions the
one on the higher backend pid gives up first (after ``_CONFLICT_WAIT_SECONDS``), the other
waits twice as long, so one of them goes through. A transaction holding none waits as long as
it takes (it cannot be part of such a cycle).
"""

from __future__ import annotations

import time
from typing import Any

from pgoutbox.errors import KeepOrderConflict
from pgoutbox.sql import query

_CONFLICT_WAIT_SECONDS = 1.0
_RETRY_SECONDS = 0.005

# On the Django connection wrapper: (transaction id, keep-order streams it locked).
_HELD = "_pgoutbox_keep_order_streams"


def lock_stream(cursor: Any, stream: str, connection: Any) -> None:
    """Take ``stream``'s producer lock for the current transaction (see the module's doc)."""
    started = time.monotonic()
    deadline: float | None = None
    while True:
        cursor.execute(query("try_lock_ordered_producer"), {"stream": stream})
        locked, txid = cursor.fetchone()
        held_txid, held = getattr(connection, _HELD, (None, frozenset()))
        if held_txid != txid:
            held = frozenset()
        if locked:
            setattr(connection, _HELD, (txid, held | {stream}))
            return
        others = sorted(held - {stream})
        if not others:
            return  # insert_ordered_call waits for the lock: no cycle can go through us
        if deadline is None:
            deadline = started + _CONFLICT_WAIT_SECONDS * _patience(cursor, stream)
        if time.monotonic() >= deadline:
            raise KeepOrderConflict(
                f"keep-order stream {stream!r} is held by another transaction while this one "
                f"holds keep-order stream(s) {others}: waiting could deadlock. Write keep-order "
                "streams in one order (e.g. sorted by name) or in separate transactions"
            )
        time.sleep(_RETRY_SECONDS)


def _patience(cursor: Any, stream: str) -> float:
    """2 when the holder of ``stream`` would give up first (its pid is higher), else 1."""
    cursor.execute(query("keep_order_holder"), {"stream": stream})
    holder, own = cursor.fetchone()
    return 2.0 if holder is not None and holder > own else 1.0
