"""Producers of keep-order streams: serialized per stream, without deadlocks between streams.

A producer of a keep-order stream holds the stream's advisory lock from its insert to its
commit, so ids of one stream are drawn in commit order. Two transactions writing streams A
and B in opposite orders would each wait for the other's lock (PostgreSQL's ``deadlock
detected`` after a second). So a transaction that already holds a keep-order stream does not
wait unboundedly for a second one: it tries for up to ``_CONFLICT_WAIT_SECONDS``, then raises
:class:`~pgoutbox.errors.KeepOrderConflict` naming both streams. A transaction holding none
waits as long as it takes (it cannot be part of such a cycle).
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
    deadline = time.monotonic() + _CONFLICT_WAIT_SECONDS
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
        if time.monotonic() >= deadline:
            raise KeepOrderConflict(
                f"keep-order stream {stream!r} is held by another transaction while this one "
                f"holds keep-order stream(s) {others}: waiting could deadlock. Write keep-order "
                "streams in one order (e.g. sorted by name) or in separate transactions"
            )
        time.sleep(_RETRY_SECONDS)
