"""The relay loop: wait for a notification or the poll interval, drain, repeat.

Two lanes, one engine. The message lane (relay/messages.py) runs here: it claims a batch
(``FOR UPDATE SKIP LOCKED``), publishes it with broker confirmations, deletes what was
confirmed, records what was not, commits, and goes on while batches come back full. The calls
lane (relay/calls.py) runs registered functions in a thread of its own, woken by keep-order
calls' notifications (``pgoutbox_calls``) and its poll, so user code never shares a
transaction with messages and a hung call never delays them. Every (re)connect LISTENs first
and drains second, so no commit falls between the two. ``events_relay`` runs the same engine
without LISTEN.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from pgoutbox.conf import Settings
from pgoutbox.errors import DatabaseError
from pgoutbox.policy import reconnect_delay
from pgoutbox.relay.adaptive import BusyLock, adaptive_mode
from pgoutbox.relay.calls import CallLane
from pgoutbox.relay.channels import BUSY_CHANNEL, CALLS_CHANNEL, ORDERED_CHANNEL
from pgoutbox.relay.listener import NotificationListener, channels_for
from pgoutbox.relay.messages import BatchReport, MessageLane
from pgoutbox.relay.ordered_messages import OrderedMessages
from pgoutbox.relay.store import MessageStore
from pgoutbox.transports.base import Transport

logger = logging.getLogger(__name__)

ConnectFn = Callable[[bool], psycopg.Connection[Any]]  # autocommit -> new connection

# How long a stopping relay waits for a call that is still running (the call's lease hands it
# to another relay if the process exits first).
_CALLS_STOP_SECONDS = 10.0

# The longest a busy listener in adaptive mode waits between empty claims while a producer that
# skipped NOTIFY is still open: at most ~20 claims a second, and that producer's rows are seen
# within this long of its commit.
_ADAPTIVE_WAIT_CAP = 0.05

__all__ = ["BatchReport", "Relay"]


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
        alias: str | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.connect = connect
        self.streams = list(streams)
        self.batch_size = batch_size or settings.batch_size
        self.poll_interval = poll_interval or settings.poll_interval
        self.listen = listen
        self.alias = alias or settings.database
        self.listener: NotificationListener | None = None
        self.messages = MessageLane(
            settings=settings, transport=transport, streams=self.streams, batch_size=self.batch_size
        )
        # Ordered message streams (relay/ordered_messages.py).
        self.ordered = OrderedMessages(self.messages, poll_interval=self.poll_interval)
        self.calls = CallLane(
            settings=settings,
            connect=connect,
            alias=self.alias,
            streams=self.streams,
            batch_size=self.batch_size,
            poll_interval=self.poll_interval,
        )
        self._next_heartbeat = 0.0
        self.busy_lock: BusyLock | None = None
        self._check_busy = False

    @property
    def broker_error(self) -> str | None:
        """The last broker failure, until a publish succeeds."""
        return self.messages.broker_error

    # -- lifecycle -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set; database and broker outages are waited out, never fatal.

        The batch in flight when ``stop`` is set is finished before returning.
        """
        calls = threading.Thread(
            target=self.calls.run, args=(stop,), name="pgoutbox-calls", daemon=True
        )
        calls.start()
        reconnects = 0
        lost: str | None = None
        try:
            while not stop.is_set():
                try:
                    self.open()
                    # LISTEN is on: a call committed before it woke nobody (the calls lane may
                    # have looked just before that commit), and after an outage the lane
                    # checks its session now rather than at its next poll.
                    self.calls.wake.set()
                    if lost is not None:
                        self.messages.settle_lost_batch(lost)
                        self.ordered.settle_lost_batch(lost)
                        lost = None
                    self.drain(stop)
                    reconnects = 0  # only once a drain worked: a failure right after
                    while not stop.is_set():  # connecting must back off, not loop
                        self.tick(stop)
                        reconnects = 0
                except Exception as exc:
                    reconnects += 1
                    lost = f"{type(exc).__name__}: {exc}"
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
            self.calls.wake.set()  # stop is set: the lane ends after its current call
            calls.join(_CALLS_STOP_SECONDS)
            if calls.is_alive():
                logger.warning("a call is still running; its lease hands it to another relay")
                try:
                    self.calls.release_unstarted()
                except Exception:
                    logger.warning("could not hand back calls leased with it", exc_info=True)

    def open(self) -> None:
        """Connect to the database: LISTEN (when listening) before anything is claimed."""
        self.close_database()
        if self.listen:
            self.listener = NotificationListener(self.connect(True), channels_for(self.streams))
            self.listener.listen()
            # Only a listener of every stream may make producers of any stream skip NOTIFY.
            if not self.streams and adaptive_mode(self.listener.conn):
                self.busy_lock = BusyLock(self.listener.conn)
                self._check_busy = True  # another listener may have been busy before we came
            self._next_heartbeat = time.monotonic() + self.settings.heartbeat_interval
        self.messages.store = MessageStore(self.connect(False))
        self.ordered.wake()  # ordered rows committed while disconnected
        logger.info(
            "relay connected",
            extra={
                "streams": self.streams or "all",
                "listen": self.listen,
                "batch": self.batch_size,
            },
        )

    def close_database(self) -> None:
        for owner in (self.listener, self.messages.store):
            if owner is not None:
                owner.conn.close()
        self.listener = self.messages.store = None
        self.busy_lock = None  # a session lock: it went with the connection

    def close(self) -> None:
        self.close_database()
        self.transport.close()

    # -- one step --------------------------------------------------------------------------

    def tick(self, stop: threading.Event) -> int:
        """Wait for a notification (or the poll interval), then drain; return events delivered."""
        timeout = 0.0 if self._check_busy else self.poll_interval
        until_retry = self.messages.retry_at - time.monotonic()
        if 0 < until_retry < timeout:
            timeout = until_retry
        timeout = max(0.0, min(timeout, self.ordered.due_at - time.monotonic()))
        channels: frozenset[str] = frozenset()
        if self.listener is not None:
            channels = self.listener.wait(timeout, stop)
            if CALLS_CHANNEL in channels:
                self.calls.wake.set()
            self._heartbeat_if_due()
        else:
            stop.wait(timeout)
        if stop.is_set():
            return 0
        if ORDERED_CHANNEL in channels or not channels:  # a producer's hint, or a poll
            self.ordered.wake()
        delivered = self.ordered.drain(stop)  # ordered message streams, when woken
        if self.busy_lock is None:
            return delivered + self.drain(stop)
        if (BUSY_CHANNEL in channels or self._check_busy) and self.busy_lock.held_elsewhere():
            self._check_busy = False
            return delivered + self._assist(self.busy_lock, stop)
        self._check_busy = False
        return delivered + self._drain_adaptive(self.busy_lock, stop)

    def _drain_adaptive(self, lock: BusyLock, stop: threading.Event) -> int:
        """``pgoutbox.notify = 'adaptive'``: when a wake-up finds more than one event, hold the
        busy lock (producers skip NOTIFY) and keep draining; give it up after an empty claim,
        once no producer that skipped is in flight, then drain once more (the protocol is in
        migrations_sql/0002_adaptive_notify.sql). One event per wake-up: NOTIFY costs producers
        little at that pace, so the listener stays idle. While a producer that skipped NOTIFY
        keeps its transaction open, the listener looks again after ``ADAPTIVE_POLL_INTERVAL``,
        doubling up to ``_ADAPTIVE_WAIT_CAP`` while it finds nothing: bounded claims per
        second, never a spin.
        """
        assert self.listener is not None
        if time.monotonic() < self.messages.retry_at:
            return 0
        first = self.messages.relay_batch()
        delivered = first.delivered
        if first.transport_failed:
            return delivered
        if first.claimed < 2 or not lock.acquire():
            return delivered + (self.drain(stop) if first.more else 0)
        lock.announce()
        return delivered + self._drain_while_skipped(
            lambda until_retry: until_retry <= 0 and lock.release_if_idle(), stop
        )

    def _assist(self, lock: BusyLock, stop: threading.Event) -> int:
        """Another listener is busy, so producers skip NOTIFY: claim beside it, with the same
        bounded backoff, until it is idle again; then drain once more."""
        return self._drain_while_skipped(lambda _: not lock.held_elsewhere(), stop)

    def _drain_while_skipped(self, finished: Callable[[float], bool], stop: threading.Event) -> int:
        """Drain while producers skip NOTIFY (a listener holds the busy lock); after each empty
        round ask ``finished(seconds until the broker's retry)``, and once it says so, drain
        once more and return. Between empty rounds: :meth:`_pause_while_skipped`."""
        delivered, empty_rounds = 0, 0
        while not stop.is_set():
            # Producers skip NOTIFY while the lock is held: calls committed meanwhile too.
            self.calls.wake.set()
            found = self.drain(stop)
            delivered += found
            if found:
                empty_rounds = 0
                continue
            until_retry = self.messages.retry_at - time.monotonic()
            if finished(until_retry):
                self.calls.wake.set()
                return delivered + self.drain(stop)
            empty_rounds = self._pause_while_skipped(empty_rounds, until_retry, stop)
        return delivered

    def _pause_while_skipped(
        self, empty_rounds: int, until_retry: float, stop: threading.Event
    ) -> int:
        """Wait before the next claim while producers skip NOTIFY: ``ADAPTIVE_POLL_INTERVAL``
        doubling up to ``_ADAPTIVE_WAIT_CAP`` (or the broker's retry); return the next round."""
        assert self.listener is not None
        pause = min(
            self.settings.adaptive_poll_interval * 2**empty_rounds,
            max(_ADAPTIVE_WAIT_CAP, self.settings.adaptive_poll_interval),
        )
        if ORDERED_CHANNEL in self.listener.wait(max(until_retry, pause), stop):
            self.ordered.wake()
        self._heartbeat_if_due()
        return min(empty_rounds + 1, 16)

    def drain(self, stop: threading.Event | None = None) -> int:
        """Relay message batches until one comes back short; return how many were delivered."""
        delivered = self.ordered.drain(stop)  # a no-op unless woken (relay/ordered_messages.py)
        while stop is None or not stop.is_set():
            if time.monotonic() < self.messages.retry_at:
                break
            report = self.messages.relay_batch()
            delivered += report.delivered
            if not report.more or report.transport_failed:
                break
            # Notifications wait while we drain (and adaptive producers skip them): a call
            # committed meanwhile must not wait for the end of the backlog.
            self.calls.wake.set()
        return delivered

    def relay_batch(self) -> BatchReport:
        """One message batch (see :class:`MessageLane`)."""
        return self.messages.relay_batch()

    def drain_once(self, stop: threading.Event | None = None) -> int:
        """Connect, relay every due message and run every due call, disconnect (cron); return
        how many were delivered or ran. ``stop`` ends it after the batch or call in flight."""
        try:
            self.open()
            return self.drain(stop) + self.calls.drain(stop)
        finally:
            self.calls.close()
            self.close()

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
