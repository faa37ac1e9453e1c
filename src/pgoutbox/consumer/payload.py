"""``Payload``: what a ``subscribe`` callback receives (django-outbox-pattern's names)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pgoutbox.consumer import inbox


class Payload:
    """One message: ``body`` (parsed JSON, else the text), ``headers``, and how to settle it.

    Call ``save()`` inside your ``transaction.atomic()`` with your own writes: the inbox row
    and your rows commit together, and the message is acknowledged after the callback
    returns. Call ``nack()`` to reject it: RabbitMQ dead-letters it to ``DLQ.<queue>``.
    ``ack()`` and ``nack()`` settle the message once; later calls do nothing.
    """

    def __init__(
        self,
        *,
        raw_body: bytes,
        headers: Mapping[str, str],
        message_id: str,
        using: str,
        ack: Callable[[], None],
        nack: Callable[[], None],
    ) -> None:
        self.raw_body = raw_body
        self.body = parse_body(raw_body)
        self.headers = dict(headers)
        self.message_id = message_id
        self.destination = self.headers.get("destination", "")
        self.saved = False
        self.acked = False
        self.nacked = False
        self._using = using
        self._ack = ack
        self._nack = nack

    def save(self) -> None:
        """Record the message id in the inbox, in the caller's transaction.

        A redelivery of this id is then acknowledged without calling the callback. Raises
        ``IntegrityError`` if another consumer recorded it first.
        """
        inbox.record(
            self.message_id,
            destination=self.destination,
            body=self.raw_body,
            headers=self.headers,
            using=self._using,
        )
        self.saved = True

    def ack(self) -> None:
        """Acknowledge the message now (normally left to the consumer)."""
        if not (self.acked or self.nacked):
            self._ack()
            self.acked = True

    def nack(self) -> None:
        """Reject the message without requeueing it (``requeue: false``): to the DLQ."""
        if not (self.acked or self.nacked):
            self._nack()
            self.nacked = True


def parse_body(raw: bytes) -> Any:
    """Return the JSON value of ``raw``, or its text when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
