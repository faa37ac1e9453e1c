"""The consumer's inbox (``pgoutbox_received``): which message ids each consumer has handled.

The key is ``(consumer, message_id)``: ``consumer`` is the queue a subscription reads, so one
message fanned out to two queues of one service runs both callbacks, while competing
consumers of one queue share their dedupe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from django.db import connections

from pgoutbox.errors import AlreadyReceived, NotInTransaction
from pgoutbox.models import ReceivedMessage
from pgoutbox.sql import query

# Producer ids that survive redelivery, best first; the broker's message-id is the last
# resort (on RabbitMQ it changes on every delivery, so it deduplicates nothing).
DEDUPE_HEADERS = ("pgoutbox-message-id", "dop-msg-id", "cap-msg-id", "message-id")


def message_id_of(headers: Mapping[str, str]) -> str:
    """Return the id a message is deduplicated on (see ``DEDUPE_HEADERS``)."""
    for name in DEDUPE_HEADERS:
        value = headers.get(name)
        if value:
            return str(value)
    raise ValueError("the message has no message-id header")


def already_received(consumer: str, message_id: str, *, using: str) -> bool:
    """Whether ``consumer`` has ``message_id`` in its inbox on ``using`` (committed)."""
    rows = ReceivedMessage._default_manager.using(using)
    return rows.filter(consumer=consumer, message_id=message_id).exists()


def transaction_alias(using: str | None = None) -> str:
    """The database alias of the caller's ``transaction.atomic()``.

    With ``using``, that alias, which must be inside an atomic block. Without it, the one
    alias of this thread that is inside an atomic block. Raises ``NotInTransaction`` when
    there is none (an autocommitted inbox row would survive the rollback of your writes) or
    when there are several (name yours with ``using``).
    """
    if using is not None:
        if not connections[using].in_atomic_block:
            raise NotInTransaction(
                f"payload.save(using={using!r}) must be called inside "
                f"transaction.atomic(using={using!r}), with the writes it records"
            )
        return using
    aliases = [c.alias for c in connections.all(initialized_only=True) if c.in_atomic_block]
    if not aliases:
        raise NotInTransaction(
            "payload.save() must be called inside transaction.atomic(), with the writes it "
            "records: the inbox row and your rows commit together"
        )
    if len(aliases) > 1:
        raise NotInTransaction(
            f"payload.save() is inside transactions of several databases ({sorted(aliases)}): "
            "name the one of your writes with payload.save(using=...)"
        )
    return aliases[0]


def record(message: ReceivedMessage, *, using: str) -> None:
    """Insert ``message`` as an inbox row in the current transaction of ``using``; fill in
    its ``id``, ``received_at`` and ``processed_at``.

    Raises ``AlreadyReceived`` when its consumer already has the message id (committed by
    an earlier delivery, or by a concurrent one that committed while this insert waited).
    """
    params: dict[str, str | bytes] = {
        "consumer": message.consumer,
        "message_id": message.message_id,
        "destination": message.destination,
        "body": bytes(message.body),
        "headers": json.dumps(message.headers),
        "status": message.status,
    }
    with connections[using].cursor() as cursor:
        cursor.execute(query("insert_received"), params)
        row = cursor.fetchone()
    if row is None:
        raise AlreadyReceived(
            f"consumer {message.consumer!r} already recorded message {message.message_id!r}"
        )
    message.id, message.received_at, message.processed_at = row
    message._state.adding, message._state.db = False, using
