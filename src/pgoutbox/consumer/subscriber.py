"""``Subscriber``: one STOMP subscription, each message handed to a callback, then settled.

The loop, on the calling thread: connect → SUBSCRIBE with client-individual acks → for each
message: ack an id this consumer already has in its inbox, else call the callback → settle
it as :mod:`pgoutbox.consumer.outcome` says:

- ack (returned, ``payload.save()``d or not; or ``AlreadyReceived``);
- dead-letter (it raised, or called ``payload.nack()``): published to ``DLQ.<queue>`` with a
  receipt, then acked (see :mod:`pgoutbox.consumer.connection` for why not a broker DLX);
- retry (a transient database error): Django's connections are closed, the message is
  requeued, and the next message waits a backoff step (``reconnect_delay``) that grows while
  the database stays away. The broker connection is kept: no reconnect storm.

A lost broker connection is reopened with backoff and the subscription restored;
unacknowledged messages come back from the broker and the inbox deduplicates them.
stomp.py's receiver thread only queues frames, so a slow callback never starves heartbeats.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Mapping

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, close_old_connections, connections

from pgoutbox import metrics, tracing
from pgoutbox.conf import Settings, get_settings
from pgoutbox.consumer import inbox
from pgoutbox.consumer.connection import ConsumerConnection
from pgoutbox.consumer.correlation import correlation_id
from pgoutbox.consumer.outcome import Outcome, outcome_of
from pgoutbox.consumer.payload import Payload
from pgoutbox.errors import TransportUnavailable
from pgoutbox.policy import reconnect_delay

logger = logging.getLogger(__name__)

_SUBSCRIPTION_ID = "pgoutbox-consumer"
_POLL_SECONDS = 0.2
_DECLARED_OTHERWISE = (
    "queue %s exists with other arguments than this subscription's (e.g. x-dead-letter-* set "
    "by django-outbox-pattern's consumer): delete it once (rabbitmqctl delete_queue), or "
    "consume it as it is through /amq/queue/%s"
)


def queue_name_of(destination: str, queue_name: str | None = None) -> str:
    """The queue a subscription reads: ``queue_name``, else the destination's last segment.
    It is also the consumer's name in the inbox (the dedupe key's first half)."""
    return queue_name or destination.rstrip("/").rsplit("/", 1)[-1]


def subscribe_headers(settings: Settings, destination: str, queue: str) -> dict[str, str]:
    """SUBSCRIBE headers: ``CONSUMER_QUEUE_HEADERS``, ``prefetch-count``, and ``x-queue-name``
    for ``/exchange/`` and ``/topic/`` destinations (RabbitMQ declares and binds a queue of
    that name). No dead-letter arguments: see :mod:`pgoutbox.consumer.connection`.

    Raises ``ImproperlyConfigured`` for queue arguments (``x-...``) on a ``/queue/``
    destination: every plain SEND to it would then fail (``PRECONDITION_FAILED``).
    """
    own = dict(settings.consumer_queue_headers)
    if destination.startswith("/queue/"):
        arguments = sorted(k for k in own if k.lower().startswith("x-"))
        if arguments:
            raise ImproperlyConfigured(
                f"PGOUTBOX['CONSUMER_QUEUE_HEADERS'] has queue arguments {arguments}: RabbitMQ "
                f"would refuse every plain SEND to {destination} (PRECONDITION_FAILED); set "
                "them with a broker policy instead"
            )
    headers = {**own, "prefetch-count": str(settings.consumer_prefetch)}
    if destination.startswith(("/exchange/", "/topic/")):
        headers["x-queue-name"] = queue
    return headers


class Subscriber:
    """Consumes ``destination`` (queue ``queue_name``, default its last segment) with
    ``callback(payload)`` until :meth:`run`'s stop event is set.

    ``subscribed`` is set while the subscription is active. The callback runs on the thread
    that called :meth:`run`, with Django's connections of that thread. Raises
    ``ImproperlyConfigured`` for queue headers a plain producer would contradict.
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
        self.headers = subscribe_headers(self.settings, destination, self.queue)
        self.using = self.settings.database
        self.subscribed = threading.Event()
        self._db_failures = 0

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the message in hand is finished first. Never raises
        for a broker or database outage: it waits with backoff and carries on."""
        broker_failures = 0
        try:
            while not stop.is_set():
                if broker_failures:
                    stop.wait(reconnect_delay(broker_failures, self.settings))
                    if stop.is_set():
                        break
                connection = ConsumerConnection(self.settings, _SUBSCRIPTION_ID)
                try:
                    connection.open()
                    connection.subscribe(self.destination, self.headers)
                except TransportUnavailable as exc:
                    connection.close()
                    broker_failures += 1
                    logger.warning("broker unavailable (attempt %d): %s", broker_failures, exc)
                    if "inequivalent arg" in str(exc):
                        logger.error(_DECLARED_OTHERWISE, self.queue, self.queue)
                    continue
                self.subscribed.set()
                logger.info("subscribed to %s (queue %s)", self.destination, self.queue)
                try:
                    handled = self._consume(connection, stop)
                finally:
                    self.subscribed.clear()
                    connection.close()
                # A connection lost before it settled anything counts as a failure in a row.
                broker_failures = 0 if stop.is_set() else (1 if handled else broker_failures + 1)
        finally:
            _close_connections()
        logger.info("consumer stopped", extra={"destination": self.destination})

    def _consume(self, connection: ConsumerConnection, stop: threading.Event) -> int:
        """Handle messages until ``stop`` or the connection is lost; return how many."""
        handled = 0
        while not stop.is_set():
            try:
                frame = connection.frames.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if connection.lost is not None:
                    logger.warning("STOMP connection lost (%s); reconnecting", connection.lost)
                    return handled
                continue
            try:
                self._handle(connection, frame.headers, frame.body, stop)
            except TransportUnavailable as exc:
                logger.warning("STOMP connection unusable (%s); reconnecting", exc)
                return handled
            handled += 1
        return handled

    def _handle(
        self,
        connection: ConsumerConnection,
        headers: Mapping[str, str],
        body: bytes,
        stop: threading.Event,
    ) -> None:
        close_old_connections()
        message_id = inbox.message_id_of(headers)
        try:
            duplicate = inbox.already_received(self.queue, message_id, using=self.using)
        except DatabaseError as exc:
            self._retry_later(connection, headers, message_id, exc, stop)
            return
        if duplicate:
            logger.info("message %s already received; acked and skipped", message_id)
            connection.ack(headers)
            metrics.observe_consumed("duplicate")
            return
        payload = Payload(
            raw_body=body,
            headers=headers,
            message_id=message_id,
            consumer=self.queue,
            ack=lambda: connection.ack(headers),
        )
        error: Exception | None = None
        with correlation_id(headers):
            try:
                with tracing.consume_span(self.destination, headers, message_id=message_id):
                    self.callback(payload)
            except Exception as exc:
                error = exc
        outcome = outcome_of(error, acked=payload.acked, nacked=payload.nacked)
        if outcome is Outcome.RETRY:
            assert error is not None
            self._retry_later(connection, headers, message_id, error, stop)
            return
        self._db_failures = 0
        if outcome is Outcome.DEAD_LETTER:
            reason = "payload.nack()" if payload.nacked else repr(error)
            connection.dead_letter(headers, body, queue_name=self.queue, reason=reason)
            logger.error(
                "message %s dead-lettered to DLQ.%s: %s",
                message_id,
                self.queue,
                reason,
                exc_info=error if not payload.nacked else None,
            )
            metrics.observe_consumed("nacked")
        elif outcome is Outcome.DUPLICATE:
            logger.info("message %s already recorded by this consumer; acked", message_id)
            payload.ack()
            metrics.observe_consumed("duplicate")
        elif outcome is Outcome.ACK:
            if not payload.saved:
                logger.warning(
                    "callback returned without payload.save() or payload.nack() on message "
                    "%s: acked, but a redelivery would run the callback again",
                    message_id,
                )
            payload.ack()
            metrics.observe_consumed("handled")

    def _retry_later(
        self,
        connection: ConsumerConnection,
        headers: Mapping[str, str],
        message_id: str,
        error: BaseException,
        stop: threading.Event,
    ) -> None:
        """A transient database error: recycle this thread's connections, requeue the
        message, and wait one backoff step before taking the next message."""
        _close_connections()
        self._db_failures += 1
        delay = reconnect_delay(self._db_failures, self.settings)
        logger.warning(
            "database unavailable (%s): message %s requeued; next message in %.1fs",
            " ".join(str(error).split()) or type(error).__name__,
            message_id,
            delay,
            extra={"consumer": self.queue, "attempt": self._db_failures},
        )
        connection.requeue(headers)
        stop.wait(delay)


def _close_connections() -> None:
    """Close this thread's Django connections (a broken one is replaced on next use)."""
    for connection in connections.all(initialized_only=True):
        with contextlib.suppress(DatabaseError):
            connection.close()
