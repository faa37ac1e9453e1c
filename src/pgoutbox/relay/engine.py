"""The relay loop: wait for a notification or the poll interval, drain, repeat.

Draining claims a batch (``FOR UPDATE SKIP LOCKED``), publishes it with broker confirmations,
deletes what was confirmed, records what was not, commits, and goes on while batches come back
full. Every (re)connect LISTENs first and drains second, so no commit falls between the two.
``events_relay`` runs the same engine without LISTEN.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from pgoutbox.conf import Settings
from pgoutbox.errors import DatabaseError, TransportUnavailable
from pgoutbox.policy import Failure, dies, reconnect_delay, retry_delay
from pgoutbox.relay.adaptive import BusyLock, adaptive_mode
from pgoutbox.relay.calls import run_calls, run_ordered
from pgoutbox.relay.dispatch import to_message
from pgoutbox.relay.listener import NotificationListener, channels_for
from pgoutbox.relay.store import EventRow, EventStore
from pgoutbox.transports.base import Message, PublishOutcome, Transport

logger = logging.getLogger(__name__)

ConnectFn = Callable[[bool], psycopg.Connection[Any]]  # autocommit -> new connection


@dataclass(frozen=True)
class BatchReport:
    claimed: int
    delivered: int
    failed: int
    transport_failed: bool


class Relay:
    """Moves committed events from ``pgoutbox_event`` to a transport.

    ``listen=True`` (``outbox_listen``) wakes on notifications and polls every
    ``poll_interval`` as a fallback; ``listen=False`` (``events_relay``) only polls.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        transport: Transport,
        connect: ConnectFn,
        streams: Sequence[str] = (),
        batch_size: int | None = None,
        poll_interval: float | None = None,
        listen: bool = True,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.connect = connect
        self.streams = list(streams)
        self.batch_size = batch_size or settings.batch_size
        self.poll_interval = poll_interval or settings.poll_interval
        self.listen = listen
        self.store: EventStore | None = None
        self.listener: NotificationListener | None = None
        self._transport_failures = 0
        self.broker_error: str | None = None  # the last broker failure, until a publish succeeds
        self._transport_retry_at = 0.0
        self._next_heartbeat = 0.0
        self.busy_lock: BusyLock | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set; database and broker outages are waited out, never fatal.

        The batch in flight when ``stop`` is set is finished before returning.
        """
        reconnects = 0
        try:
            while not stop.is_set():
                try:
                    self.open()
                    reconnects = 0
                    self.drain(stop)
                    while not stop.is_set():
                        self.tick(stop)
                except Exception as exc:
                    reconnects += 1
                    delay = reconnect_delay(reconnects, self.settings)
                    if isinstance(exc, DatabaseError):
                        logger.warning(
                            "database unavailable, reconnecting in %.1fs: %s", delay, exc
                        )
                    else:
                        logger.exception("relay error, restarting in %.1fs", delay)
                    self.close_database()
                    stop.wait(delay)
        finally:
            self.close()

    def open(self) -> None:
        """Connect to the database: LISTEN (when listening) before anything is claimed."""
        self.close_database()
        if self.listen:
            self.listener = NotificationListener(self.connect(True), channels_for(self.streams))
            self.listener.listen()
            # Only a listener of every stream may make producers of any stream skip NOTIFY.
            if not self.streams and adaptive_mode(self.listener.conn):
                self.busy_lock = BusyLock(self.listener.conn)
            self._next_heartbeat = time.monotonic() + self.settings.heartbeat_interval
        self.store = EventStore(self.connect(False))
        logger.info(
            "relay connected",
            extra={
                "streams": self.streams or "all",
                "listen": self.listen,
                "batch": self.batch_size,
            },
        )

    def close_database(self) -> None:
        for owner in (self.listener, self.store):
            if owner is not None:
                owner.conn.close()
        self.listener = self.store = None
        self.busy_lock = None  # a session lock: it went with the connection

    def close(self) -> None:
        self.close_database()
        self.transport.close()

    # -- one step --------------------------------------------------------------------------

    def tick(self, stop: threading.Event) -> int:
        """Wait for a notification (or the poll interval), then drain; return events delivered."""
        timeout = self.poll_interval
        until_retry = self._transport_retry_at - time.monotonic()
        if 0 < until_retry < timeout:
            timeout = until_retry
        if self.listener is not None:
            self.listener.wait(timeout, stop)
            self._heartbeat_if_due()
        else:
            stop.wait(timeout)
        if stop.is_set():
            return 0
        if self.busy_lock is None:
            return self.drain(stop)
        return self._drain_adaptive(self.busy_lock, stop)

    def _drain_adaptive(self, lock: BusyLock, stop: threading.Event) -> int:
        """``pgoutbox.notify = 'adaptive'``: when a wake-up finds more than one event, hold the
        busy lock (producers skip NOTIFY) and keep draining; give it up after an empty claim,
        once no producer that skipped is in flight, then drain once more (the protocol is in
        migrations_sql/0002_adaptive_notify.sql). One event per wake-up: NOTIFY costs producers
        little at that pace, so the listener stays idle.
        """
        assert self.listener is not None
        if time.monotonic() < self._transport_retry_at:
            return 0
        first = self.relay_batch()
        delivered = first.delivered
        if first.transport_failed:
            return delivered
        if first.claimed < 2 or not lock.acquire():
            return delivered + (self.drain(stop) if first.claimed == self.batch_size else 0)
        while not stop.is_set():
            found = self.drain(stop)
            delivered += found
            if found:
                continue
            until_retry = self._transport_retry_at - time.monotonic()
            if until_retry <= 0 and lock.release_if_idle():
                return delivered + self.drain(stop)
            self.listener.wait(max(until_retry, self.settings.adaptive_poll_interval), stop)
            self._heartbeat_if_due()
        return delivered

    def drain(self, stop: threading.Event | None = None) -> int:
        """Relay batches until one comes back short; return how many events were delivered."""
        delivered = 0
        while stop is None or not stop.is_set():
            if time.monotonic() < self._transport_retry_at:
                break
            report = self.relay_batch()
            delivered += report.delivered
            if report.claimed < self.batch_size or report.transport_failed:
                break
        return delivered

    def relay_batch(self) -> BatchReport:
        """Claim, publish (or run registered functions), delete or reschedule, commit: one batch.

        Keep-order rows are claimed stream by stream under the stream's advisory lock and run
        in id order (relay/calls.py); the signals of function events are sent after the commit.
        """
        if self.store is None:
            raise DatabaseError("relay is not connected; call open() first")
        store = self.store
        rows = store.claim_batch(self.streams, self.batch_size)
        ordered = store.claim_ordered(self.streams, self.batch_size)
        if not rows and not ordered:
            store.abandon_batch()
            return BatchReport(0, 0, 0, transport_failed=False)
        messages: list[Message] = []
        failures: list[Failure] = []
        calls: list[EventRow] = []
        for row in rows:
            if row.kind == "call":
                calls.append(row)
                continue
            message = to_message(row, max_body_bytes=self.settings.max_body_bytes)
            if isinstance(message, str):
                logger.error("dead-lettering invalid event %s: %s", row.id, message)
                failures.append(Failure(row.id, message, delay=0.0, dead=True))
            else:
                messages.append(message)
        outcome = self._publish(messages)
        attempts = {row.id: row.attempts for row in rows}
        for event_id, reason in outcome.rejected.items():
            tried = attempts[event_id] + 1
            dead = dies(tried, max_attempts=self.settings.max_attempts)
            delay = retry_delay(tried, self.settings)
            failures.append(Failure(event_id, f"broker rejected: {reason}", delay, dead=dead))
        if outcome.unconfirmed:
            delay = self._note_transport_failure(outcome.failure or "not confirmed")
            failures.extend(
                Failure(event_id, outcome.failure or "not confirmed", delay)
                for event_id in outcome.unconfirmed
            )
        elif messages:
            self._transport_failures = 0
            self.broker_error = None
            self._transport_retry_at = 0.0
        ran = run_calls(calls, self.settings)
        ran_ordered = run_ordered(ordered, self.settings)
        done = [*outcome.confirmed, *ran.done, *ran_ordered.done]
        failures.extend([*ran.failures, *ran_ordered.failures])
        store.finish_batch(
            done,
            failures,
            keep_sent=not self.settings.delete_after_send,
        )
        for notice in [*ran.notices, *ran_ordered.notices]:
            notice()
        if failures:
            logger.warning(
                "batch of %d: %d delivered, %d failed",
                len(rows) + len(ordered),
                len(done),
                len(failures),
            )
        return BatchReport(
            claimed=len(rows) + len(ordered),
            delivered=len(done),
            failed=len(failures),
            transport_failed=bool(outcome.unconfirmed),
        )

    # -- helpers ---------------------------------------------------------------------------

    def _publish(self, messages: Sequence[Message]) -> PublishOutcome:
        if not messages:
            return PublishOutcome(frozenset(), {}, frozenset())
        try:
            return self.transport.publish_batch(messages)
        except TransportUnavailable as exc:
            failure = str(exc)
        except Exception as exc:
            # A transport that breaks its contract must not take the relay down: nothing was
            # confirmed, so the batch is kept and retried like after an outage.
            logger.exception("transport failed unexpectedly")
            failure = f"transport error: {exc!r}"
        self.transport.close()
        return PublishOutcome(frozenset(), {}, frozenset(m.event_id for m in messages), failure)

    def _note_transport_failure(self, reason: str) -> float:
        """Back off from the broker; return the delay also given to the unconfirmed rows."""
        self._transport_failures += 1
        self.broker_error = reason
        delay = reconnect_delay(self._transport_failures, self.settings)
        self._transport_retry_at = time.monotonic() + delay
        logger.warning("broker unavailable, retrying in %.1fs: %s", delay, reason)
        return delay

    def _heartbeat_if_due(self) -> None:
        if self.listener is None or time.monotonic() < self._next_heartbeat:
            return
        usage = self.listener.heartbeat()
        self._next_heartbeat = time.monotonic() + self.settings.heartbeat_interval
        if usage >= self.settings.notify_queue_warn:
            logger.warning(
                "NOTIFY queue is %.1f%% full: a session that LISTENs is not reading; "
                "when it fills, every transaction that inserts an event fails",
                usage * 100,
                extra={"notify_queue_usage": usage},
            )
