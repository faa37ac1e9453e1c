"""``Subscriber``: one STOMP subscription, each message handed to a callback, then settled.

The loop, on the calling thread: connect → declare ``DLQ.<queue>`` → SUBSCRIBE with
client-individual acks → for each message: skip (ack) an id already in the inbox, else call
the callback → ack or nack. A lost connection is reopened with backoff and the subscription
restored; unacknowledged messages come back from the broker and the inbox deduplicates them.
stomp.py's receiver thread only queues frames, so a slow callback never starves heartbeats.

Settling after the callback:

- it raised → nack (``requeue: false``): RabbitMQ dead-letters the message to ``DLQ.<queue>``;
  an ``IntegrityError`` because another consumer recorded the same id first → ack;
- it called ``payload.save()`` → ack, after its transaction committed;
- it returned without ``save()`` or ``nack()`` → ack, with a warning: returning normally means
  "handled", but without an inbox row a redelivery would run the callback again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

import stomp
import stomp.exception
from django.db import DatabaseError, IntegrityError, close_old_connections, connections

from pgoutbox.conf import Settings, get_settings
from pgoutbox.consumer import inbox
from pgoutbox.consumer.payload import Payload
from pgoutbox.errors import TransportUnavailable
from pgoutbox.policy import reconnect_delay
from pgoutbox.transports.stomp import (
    ConnectionState,
    close_connection,
    new_connection,
    start_connection,
)

logger = logging.getLogger(__name__)

_SUBSCRIPTION_ID = "pgoutbox-consumer"
_POLL_SECONDS = 0.2


def queue_name_of(destination: str, queue_name: str | None = None) -> str:
    """The queue a subscription reads: ``queue_name``, else the destination's last segment."""
    return queue_name or destination.rstrip("/").rsplit("/", 1)[-1]


def subscribe_headers(settings: Settings, destination: str, queue: str) -> dict[str, str]:
    """SUBSCRIBE headers: ``CONSUMER_QUEUE_HEADERS``, ``prefetch-count``, dead-lettering to
    ``DLQ.<queue>`` through the default exchange, and ``x-queue-name`` for ``/exchange/`` and
    ``/topic/`` destinations (RabbitMQ declares and binds a queue of that name)."""
    headers = {
        **dict(settings.consumer_queue_headers),
        "prefetch-count": str(settings.consumer_prefetch),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": f"DLQ.{queue}",
    }
    if destination.startswith(("/exchange/", "/topic/")):
        headers["x-queue-name"] = queue
    return headers


class _Connection(ConnectionState):
    """One STOMP connection: frames of our subscription are queued for the main thread."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.frames: queue.Queue[Any] = queue.Queue()
        self.errors: list[str] = []
        self.conn = new_connection(settings)
        self.conn.set_listener("pgoutbox-consumer", self)

    def on_error(self, frame: Any) -> None:
        with self.changed:
            self.errors.append(frame.headers.get("message", "broker sent ERROR"))
            self.changed.notify_all()

    def on_message(self, frame: Any) -> None:
        if frame.headers.get("subscription") == _SUBSCRIPTION_ID:
            self.frames.put(frame)

    def open(self) -> None:
        """Connect; raise ``TransportUnavailable`` when the broker is unreachable or refuses."""
        start_connection(self.conn, self.settings)
        self._wait(lambda: self.connected, "no CONNECTED frame in time")

    def request(self, send: Callable[[str], None], receipt: str) -> None:
        """Send one frame asking for ``receipt`` and wait for it (an ERROR raises)."""
        try:
            send(receipt)
        except (stomp.exception.StompException, OSError) as exc:
            raise TransportUnavailable(f"STOMP frame not sent: {exc!r}") from exc
        self._wait(lambda: receipt in self.receipts, f"no receipt {receipt!r} in time")

    def _wait(self, done: Callable[[], bool], timeout_reason: str) -> None:
        with self.changed:
            self.changed.wait_for(
                lambda: done() or self.disconnected or bool(self.errors),
                self.settings.stomp_connect_timeout,
            )
            if done() and not self.errors:
                return
            reason = "; ".join(self.errors) or (
                "connection lost" if self.disconnected else timeout_reason
            )
        raise TransportUnavailable(f"STOMP broker: {reason}")

    def settle(self, headers: Mapping[str, str], *, accept: bool) -> None:
        """ACK or NACK (``requeue: false``) one message; a lost connection is only logged:
        the broker redelivers the message and the inbox deduplicates it."""
        ack_id = headers.get("ack") or headers["message-id"]
        try:
            if accept:
                self.conn.ack(ack_id)
            else:
                # The literal lowercase "false": some RabbitMQ versions read "False" as true.
                self.conn.nack(ack_id, requeue="false")
        except (stomp.exception.StompException, OSError) as exc:
            logger.warning("could not %s a message: %r", "ack" if accept else "nack", exc)

    def close(self) -> None:
        close_connection(self.conn)


class Subscriber:
    """Consumes ``destination`` (queue ``queue_name``, default its last segment) with
    ``callback(payload)`` until :meth:`run`'s stop event is set.

    ``subscribed`` is set while the subscription is active. The callback runs on the thread
    that called :meth:`run`, with Django's connections of that thread.
    """

    def __init__(
        self,
        callback: Callable[[Payload], object],
        destination: str,
        queue_name: str | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        self.callback = callback
        self.destination = destination
        self.queue = queue_name_of(destination, queue_name)
        self.settings = settings or get_settings()
        self.using = self.settings.database
        self.subscribed = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the message in hand is finished first. Never raises
        for a broker outage: it reconnects with backoff."""
        failures = 0
        try:
            while not stop.is_set():
                connection = _Connection(self.settings)
                try:
                    self._subscribe(connection)
                except TransportUnavailable as exc:
                    connection.close()
                    failures += 1
                    delay = reconnect_delay(failures, self.settings)
                    logger.warning("broker unavailable, retrying in %.1fs: %s", delay, exc)
                    stop.wait(delay)
                    continue
                failures = 0
                try:
                    self._consume(connection, stop)
                finally:
                    self.subscribed.clear()
                    connection.close()
        finally:
            connections.close_all()  # this thread's connections only
        logger.info("consumer stopped", extra={"destination": self.destination})

    def _subscribe(self, connection: _Connection) -> None:
        connection.open()
        conn, dlq = connection.conn, f"/queue/DLQ.{self.queue}"
        # Declare the DLQ (durable, kept; x-expires as the queue's) by subscribing once;
        # nothing is acked on it, so a message delivered then goes back when we unsubscribe.
        dlq_headers = {"durable": "true", "auto-delete": "false", "prefetch-count": "1"}
        expires = dict(self.settings.consumer_queue_headers).get("x-expires")
        if expires is not None:
            dlq_headers["x-expires"] = expires
        connection.request(
            lambda r: conn.subscribe(
                dlq, id="pgoutbox-dlq", ack="client-individual", headers=dlq_headers, receipt=r
            ),
            "dlq-declared",
        )
        connection.request(lambda r: conn.unsubscribe(id="pgoutbox-dlq", receipt=r), "dlq-done")
        headers = subscribe_headers(self.settings, self.destination, self.queue)
        connection.request(
            lambda r: conn.subscribe(
                self.destination,
                id=_SUBSCRIPTION_ID,
                ack="client-individual",
                headers=headers,
                receipt=r,
            ),
            "subscribed",
        )
        self.subscribed.set()
        logger.info("subscribed to %s (queue %s)", self.destination, self.queue)

    def _consume(self, connection: _Connection, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                frame = connection.frames.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if connection.disconnected or connection.errors:
                    reason = "; ".join(connection.errors) or "connection lost"
                    logger.warning("STOMP connection lost (%s); reconnecting", reason)
                    return
                continue
            if not self._handle(connection, frame.headers, frame.body):
                return

    def _handle(self, connection: _Connection, headers: Mapping[str, str], body: bytes) -> bool:
        """Process one message; False when the connection must be reopened."""
        close_old_connections()
        message_id = inbox.message_id_of(headers)
        try:
            duplicate = inbox.already_received(message_id, using=self.using)
        except DatabaseError as exc:
            # Leave the message unsettled: the broker redelivers it after the reconnect.
            logger.error("database unavailable, message left to redelivery: %s", exc)
            close_old_connections()
            return False
        if duplicate:
            logger.info("message %s already received; acked and skipped", message_id)
            connection.settle(headers, accept=True)
            return True
        payload = Payload(
            raw_body=body,
            headers=headers,
            message_id=message_id,
            using=self.using,
            ack=lambda: connection.settle(headers, accept=True),
            nack=lambda: connection.settle(headers, accept=False),
        )
        try:
            self.callback(payload)
        except IntegrityError:
            close_old_connections()
            if self._recorded_elsewhere(message_id):
                logger.info("message %s recorded by another consumer; acked", message_id)
                payload.ack()
            else:
                logger.exception("callback failed on message %s; nacked", message_id)
                payload.nack()
            return True
        except Exception:
            logger.exception("callback failed on message %s; nacked (to the DLQ)", message_id)
            payload.nack()
            return True
        if not (payload.saved or payload.acked or payload.nacked):
            logger.warning(
                "callback returned without payload.save() or payload.nack() on message %s: "
                "acked, but a redelivery would run the callback again",
                message_id,
            )
        payload.ack()
        return True

    def _recorded_elsewhere(self, message_id: str) -> bool:
        try:
            return inbox.already_received(message_id, using=self.using)
        except DatabaseError:
            return False
