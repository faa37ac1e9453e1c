"""``Payload``: what a ``subscribe`` callback receives (django-outbox-pattern's names)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pgoutbox.consumer import inbox
from pgoutbox.models import ReceivedMessage


class Payload:
    """One message: ``body`` (parsed JSON, else the text), ``headers``, and how to settle it.

    Call ``save()`` inside your ``transaction.atomic()`` with your own writes: the inbox row
    and your rows commit together, and the message is acknowledged after the callback
    returns. Call ``nack()`` to dead-letter it to ``DLQ.<queue>`` once the callback returns.
    ``ack()`` and ``nack()`` settle the message once; later calls do nothing.

    ``message`` is the inbox row ``save()`` writes (a ``ReceivedMessage``, unsaved until
    then), as django-outbox-pattern's ``Payload.message`` was its ``Received`` row.
    """

    def __init__(
        self,
        *,
        raw_body: bytes,
        headers: Mapping[str, str],
        message_id: str,
        consumer: str,
        ack: Callable[[], None],
    ) -> None:
        self.raw_body = raw_body
        self.body = parse_body(raw_body)
        self.headers = dict(headers)
        self.message_id = message_id
        self.consumer = consumer
        self.destination = self.headers.get("destination", "")
        self.message = ReceivedMessage(
            consumer=consumer,
            message_id=message_id,
            destination=self.destination,
            body=raw_body,
            headers=self.headers,
            status="succeeded",
        )
        self.saved = False
        self.acked = False
        self.nacked = False
        self._ack = ack

    def save(self, using: str | None = None) -> None:
        """Record the message id in this consumer's inbox, in your current transaction.

        ``using`` names the database of your ``transaction.atomic()``; by default, the one
        database of this thread inside an atomic block. A redelivery of this message is then
        acknowledged without calling the callback. Raises ``NotInTransaction`` outside
        ``transaction.atomic()``, and ``AlreadyReceived`` when this consumer already recorded
        the id (let it propagate: your transaction rolls back and the message is acked).
        """
        inbox.record(self.message, using=inbox.transaction_alias(using))
        self.saved = True

    def ack(self) -> None:
        """Acknowledge the message now (normally left to the consumer)."""
        if not (self.acked or self.nacked):
            self._ack()
            self.acked = True

    def nack(self) -> None:
        """Reject the message: once the callback returns, it is published to ``DLQ.<queue>``
        (with a receipt) and then acknowledged; it is not redelivered here."""
        if not (self.acked or self.nacked):
            self.nacked = True


def parse_body(raw: bytes) -> Any:
    """Return the JSON value of ``raw``, or its text when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
