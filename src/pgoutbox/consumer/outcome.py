"""What becomes of a message once its callback has run: one pure rule, no I/O.

- ``payload.nack()`` was called → dead-letter (an explicit decision wins, even over an error);
- ``payload.ack()`` was called → already settled;
- ``AlreadyReceived`` (this consumer recorded the id before) → ack without effect;
- a transient database error (``OperationalError``, ``InterfaceError``: a failover, a
  restart, a dropped connection) → not processed: leave it for redelivery, after a backoff;
- any other exception → dead-letter: the callback's own failure would fail again;
- returned normally → ack.
"""

from __future__ import annotations

import enum

import django.db
import psycopg

from pgoutbox.errors import AlreadyReceived

TRANSIENT_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    django.db.OperationalError,
    django.db.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


class Outcome(enum.Enum):
    ACK = "ack"
    ALREADY_ACKED = "already acked"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    DEAD_LETTER = "dead letter"


def is_transient_database_error(error: BaseException) -> bool:
    """Whether ``error``, or an exception it was raised ``from``, is a transient database
    error (see ``TRANSIENT_DATABASE_ERRORS``)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, TRANSIENT_DATABASE_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False


def outcome_of(error: Exception | None, *, acked: bool, nacked: bool) -> Outcome:
    """The outcome of a callback that raised ``error`` (None: it returned), given whether it
    called ``payload.ack()`` or ``payload.nack()`` (see the module doc)."""
    if nacked:
        return Outcome.DEAD_LETTER
    if acked:
        return Outcome.ALREADY_ACKED
    if error is None:
        return Outcome.ACK
    if isinstance(error, AlreadyReceived):
        return Outcome.DUPLICATE
    if is_transient_database_error(error):
        return Outcome.RETRY
    return Outcome.DEAD_LETTER
