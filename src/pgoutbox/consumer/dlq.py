"""Dead letters of a consumer's queue (``DLQ.<queue>``): list, replay, purge.

``DLQ.<queue>`` is read through ``/amq/queue/`` (never declared here: a missing DLQ is an
error, not a new empty queue) with client-individual acks. Listing acknowledges nothing, so
every message stays. Replaying publishes each dead letter to ``/amq/queue/<queue>`` (the
consumer's existing queue, whatever exchange feeds it) with a receipt, and only then
acknowledges it in the DLQ: a failure leaves it there. The dedupe headers travel with it, and
a dead letter has no inbox row (its callback's transaction rolled back), so the consumer runs
it again. Purging acknowledges every dead letter: gone for good.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

from pgoutbox.conf import Settings
from pgoutbox.consumer.connection import (
    DEAD_LETTER_FROM,
    DEAD_LETTER_REASON,
    DELIVERY_HEADERS,
    ConsumerConnection,
)
from pgoutbox.consumer.inbox import message_id_of

_SUBSCRIPTION_ID = "pgoutbox-dlq"
# A queue is drained once no message came for this long after the last one.
IDLE_SECONDS = 1.0


@dataclass(frozen=True)
class DeadLetter:
    headers: dict[str, str]
    body: bytes

    @property
    def message_id(self) -> str:
        return message_id_of(self.headers)

    def summary(self) -> str:
        """One line: id, where it came from, why it died, the start of the body."""
        body = self.body.decode("utf-8", "replace")
        preview = " ".join(body.split())
        if len(preview) > 80:
            preview = preview[:77] + "..."
        return "\t".join(
            (
                self.message_id,
                self.headers.get(DEAD_LETTER_FROM, "?"),
                self.headers.get(DEAD_LETTER_REASON, "?"),
                preview,
            )
        )


def replay_headers(headers: dict[str, str]) -> dict[str, str]:
    """The message's own headers, without the dead-letter and delivery ones."""
    dropped = DELIVERY_HEADERS | {DEAD_LETTER_FROM, DEAD_LETTER_REASON}
    return {**{k: v for k, v in headers.items() if k not in dropped}, "persistent": "true"}


def check_queue_name(name: str) -> str:
    """A queue name, not a destination: raise ``ValueError`` naming what is wrong."""
    if not name or "/" in name or name.startswith("DLQ."):
        raise ValueError(
            f"{name!r} is not a queue name: give the consumer's queue (e.g. 'orders' for "
            "/queue/orders), its dead letters are in DLQ.<queue>"
        )
    return name


class DeadLetterQueue:
    """``DLQ.<queue_name>`` on one STOMP connection; use as a context manager.

    Raises ``TransportUnavailable`` when the broker cannot be reached or refuses (a missing
    DLQ: ``NOT_FOUND``), and ``ValueError`` for a name that is not a queue name.
    """

    def __init__(self, queue_name: str, settings: Settings, *, prefetch: int = 100) -> None:
        self.queue = check_queue_name(queue_name)
        self.settings = settings
        self.prefetch = prefetch
        self._connection: ConsumerConnection | None = None

    def __enter__(self) -> Self:
        connection = ConsumerConnection(self.settings, _SUBSCRIPTION_ID)
        try:
            connection.open()
            connection.subscribe(
                f"/amq/queue/DLQ.{self.queue}", {"prefetch-count": str(self.prefetch)}
            )
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return self

    def __exit__(self, *exc_info: Any) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()  # unacknowledged messages go back to the DLQ

    def _frames(self, limit: int | None = None) -> Iterator[Any]:
        connection = self._connected()
        count = 0
        while limit is None or count < limit:
            try:
                frame = connection.frames.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                return
            count += 1
            yield frame

    def browse(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters (at most the prefetch), left in the queue."""
        return [DeadLetter(dict(f.headers), f.body) for f in self._frames(limit)]

    def replay(self) -> int:
        """Move every dead letter back to ``/amq/queue/<queue>``, a receipt for each, then
        ack it in the DLQ; return how many."""
        connection = self._connected()
        destination = f"/amq/queue/{self.queue}"
        count = 0
        for frame in self._frames():
            headers, body = replay_headers(dict(frame.headers)), frame.body

            def send(receipt: str, headers: dict[str, str] = headers, body: bytes = body) -> None:
                connection.conn.send(destination, body, headers={**headers, "receipt": receipt})

            connection.request(send)
            connection.ack(frame.headers)
            count += 1
        self._settled()
        return count

    def purge(self) -> int:
        """Acknowledge (delete) every dead letter; return how many."""
        connection = self._connected()
        count = 0
        for frame in self._frames():
            connection.ack(frame.headers)
            count += 1
        self._settled()
        return count

    def _connected(self) -> ConsumerConnection:
        if self._connection is None:
            raise RuntimeError("use DeadLetterQueue as a context manager")
        return self._connection

    def _settled(self) -> None:
        """Wait until the broker has processed every ACK sent so far: frames are handled in
        order, so the receipt of a later UNSUBSCRIBE vouches for them."""
        connection = self._connected()
        connection.request(lambda r: connection.conn.unsubscribe(_SUBSCRIPTION_ID, receipt=r))
