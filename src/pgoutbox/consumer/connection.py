"""The consumer's STOMP connection: subscribe, acknowledge, requeue, dead-letter.

Dead letters are published by the consumer itself to ``/queue/DLQ.<queue>`` with a receipt,
and only then is the original acknowledged. The queue carries no ``x-dead-letter-*`` (or any
other) argument: RabbitMQ declares ``/queue/<q>`` on every SEND and refuses a declaration
whose arguments differ from the queue's (``PRECONDITION_FAILED``, connection closed), so
queue arguments set by a consumer break every plain producer of that queue. A plain SEND
declares the DLQ too, with no argument (so no ``x-expires``: dead letters never vanish).
"""

from __future__ import annotations

import itertools
import logging
import queue
from collections.abc import Callable, Mapping
from typing import Any

import stomp
import stomp.exception

from pgoutbox.conf import Settings
from pgoutbox.errors import TransportUnavailable
from pgoutbox.transports.stomp import (
    ConnectionState,
    close_connection,
    new_connection,
    start_connection,
)

logger = logging.getLogger(__name__)

# Headers of a delivered MESSAGE frame that describe this delivery, not the message.
DELIVERY_HEADERS = frozenset(
    {
        "ack",
        "content-length",
        "destination",
        "message-id",
        "persistent",
        "receipt",
        "receipt-id",
        "redelivered",
        "subscription",
        "transaction",
    }
)
DEAD_LETTER_REASON = "pgoutbox-dead-letter-reason"
DEAD_LETTER_FROM = "pgoutbox-dead-letter-from"
_REASON_CHARS = 500


def dlq_destination(queue_name: str) -> str:
    """Where the dead letters of ``queue_name`` go: ``/queue/DLQ.<queue_name>``."""
    return f"/queue/DLQ.{queue_name}"


def dead_letter_headers(headers: Mapping[str, str], reason: str) -> dict[str, str]:
    """The headers a dead letter is published with: the message's own headers (its dedupe
    ids included, so a replay is still deduplicated), ``persistent: true``, where it came
    from and why (one line, at most 500 characters)."""
    kept = {k: v for k, v in headers.items() if k not in DELIVERY_HEADERS}
    one_line = " ".join(reason.split())[:_REASON_CHARS]
    return {
        **kept,
        "persistent": "true",
        DEAD_LETTER_FROM: headers.get("destination", ""),
        DEAD_LETTER_REASON: one_line or "rejected",
    }


class ConsumerConnection(ConnectionState):
    """One STOMP connection: MESSAGE frames of ``subscription`` are queued for the thread
    that handles them (stomp.py's receiver thread never runs a callback)."""

    def __init__(self, settings: Settings, subscription: str) -> None:
        super().__init__()
        self.settings = settings
        self.subscription = subscription
        self.frames: queue.Queue[Any] = queue.Queue()
        self.errors: list[str] = []
        self.conn = new_connection(settings)
        self.conn.set_listener("pgoutbox-consumer", self)
        self._receipt_ids = itertools.count()

    def on_error(self, frame: Any) -> None:
        body = frame.body.decode("utf-8", "replace") if isinstance(frame.body, bytes) else ""
        reason = frame.headers.get("message", "broker sent ERROR")
        with self.changed:
            self.errors.append(f"{reason} {body.strip()}".strip())
            self.changed.notify_all()

    def on_message(self, frame: Any) -> None:
        if frame.headers.get("subscription") == self.subscription:
            self.frames.put(frame)

    @property
    def lost(self) -> str | None:
        """Why the connection is unusable (an ERROR frame, a disconnect), else None."""
        if self.errors:
            return "; ".join(self.errors)
        return "connection lost" if self.disconnected else None

    def open(self) -> None:
        """Connect; raise ``TransportUnavailable`` when the broker is unreachable or refuses."""
        start_connection(self.conn, self.settings)
        self._wait(
            lambda: self.connected,
            "no CONNECTED frame in time",
            self.settings.stomp_connect_timeout,
        )

    def subscribe(self, destination: str, headers: Mapping[str, str]) -> None:
        """SUBSCRIBE with client-individual acks and wait for the broker's receipt."""
        self.request(
            lambda r: self.conn.subscribe(
                destination,
                id=self.subscription,
                ack="client-individual",
                headers=dict(headers),
                receipt=r,
            )
        )

    def request(self, send: Callable[[str], None]) -> None:
        """Send one frame asking for a receipt and wait for it (an ERROR raises
        ``TransportUnavailable``)."""
        receipt = f"c{next(self._receipt_ids)}"
        try:
            send(receipt)
        except (stomp.exception.StompException, OSError) as exc:
            raise TransportUnavailable(f"STOMP frame not sent: {exc!r}") from exc
        self._wait(
            lambda: receipt in self.receipts,
            f"no receipt {receipt!r} in time",
            self.settings.stomp_receipt_timeout,
        )

    def _wait(self, done: Callable[[], bool], timeout_reason: str, timeout: float) -> None:
        with self.changed:
            self.changed.wait_for(lambda: done() or self.lost is not None, timeout)
            if done() and not self.errors:
                return
            reason = self.lost or timeout_reason
        raise TransportUnavailable(f"STOMP broker: {reason}")

    def ack(self, headers: Mapping[str, str]) -> None:
        """ACK one message; a lost connection is only logged: the broker redelivers the
        message and the inbox deduplicates it."""
        self._settle(headers, requeue=None)

    def requeue(self, headers: Mapping[str, str]) -> None:
        """NACK one message with ``requeue: true``: the broker delivers it again."""
        self._settle(headers, requeue="true")

    def _settle(self, headers: Mapping[str, str], *, requeue: str | None) -> None:
        ack_id = headers.get("ack") or headers["message-id"]
        try:
            if requeue is None:
                self.conn.ack(ack_id)
            else:
                self.conn.nack(ack_id, requeue=requeue)
        except (stomp.exception.StompException, OSError) as exc:
            logger.warning("could not settle a message (%r); it will be redelivered", exc)

    def dead_letter(
        self, headers: Mapping[str, str], body: bytes, *, queue_name: str, reason: str
    ) -> None:
        """Publish the message to ``DLQ.<queue_name>``, wait for the broker's receipt, then
        ACK the original. Raises ``TransportUnavailable`` (the original stays unacked and
        comes back) when the dead letter is not confirmed."""
        self.request(
            lambda r: self.conn.send(
                dlq_destination(queue_name),
                body,
                headers={**dead_letter_headers(headers, reason), "receipt": r},
            )
        )
        self.ack(headers)

    def close(self) -> None:
        close_connection(self.conn)
