"""The calls lane: run ``kind = 'call'`` rows, registered functions only, at least once.

It runs in a thread of its own beside the message lane, so a slow or hung function never
delays a message and never waits for the broker. Each call is leased in a committed
statement (one attempt counted; other relays keep off it until the lease runs out), then run
by :func:`pgoutbox.call_runner.run_call` in a transaction of its own on the Django alias that
recorded it, with Django's broken connections recycled around it (a database restart costs one
attempt, not the process). A failure gets a backoff and dies after ``MAX_ATTEMPTS`` (at once
for ``NON_RETRYABLE_EXCEPTIONS`` and invalid rows). A crash re-runs the call after its lease.
A call whose function this process does not register is handed back uncounted: it waits for a
relay deployed with its module.

Keep-order streams are leased stream by stream from their head, in id order; a failing head
stops its stream as :mod:`pgoutbox.relay.ordering` decides, and the rest of its lease is
handed back. jaiminho's ``*_by_events_relay`` signals are sent once each outcome is committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from django.db import connections

from pgoutbox import metrics, signals
from pgoutbox.call_runner import NOT_OURS, CallResult, describe_lost, run_call
from pgoutbox.conf import Settings
from pgoutbox.errors import DatabaseError
from pgoutbox.policy import Failure, dies, reconnect_delay, retry_delay
from pgoutbox.relay.dispatch import NotRegistered, to_call
from pgoutbox.relay.ordering import head_failure
from pgoutbox.relay.store import CallStore, EventRow

logger = logging.getLogger(__name__)

ConnectFn = Callable[[bool], psycopg.Connection[Any]]

# A keep-order stream another relay was leasing when we looked: look again this soon (a lease
# takes milliseconds), so a row committed behind that lease is not left for the poll; give up
# after a few tries, the poll covers the rest.
_BUSY_STREAM_RETRY_SECONDS = 0.01
_BUSY_STREAM_RETRIES = 20
# How many times (that far apart) a lost call's failure is retried while the row is still
# locked by the call's own session, which the server is ending.
_LOST_LOCK_RETRIES = 100
# A call whose function this relay lacks is looked at again after the backoff of this many
# failures (8 times RETRY_BACKOFF_BASE): soon after a relay with the code starts, and at a cost
# that stays small for a backlog of them.
_NOT_REGISTERED_RETRY_AFTER = 4


def recycle_connections() -> None:
    """Close the Django connections the next call could not use: broken ones (a database
    restart costs one attempt, not the process), ones left out of autocommit, and ones older
    than a positive ``CONN_MAX_AGE``. Unlike ``close_old_connections()``, ``CONN_MAX_AGE = 0``
    ("one request") keeps them: a relay is no request, and a new connection per call would
    cost more than most calls (several milliseconds)."""
    for conn in connections.all(initialized_only=True):
        if conn.settings_dict["CONN_MAX_AGE"] == 0:
            conn.close_at = None  # set at connect from CONN_MAX_AGE; None: no age limit
        conn.close_if_unusable_or_obsolete()


class CallLane:
    """Leases and runs calls of one database until stopped; owns its own connection."""

    def __init__(
        self,
        *,
        settings: Settings,
        connect: ConnectFn,
        alias: str,
        streams: Sequence[str] = (),
        batch_size: int,
        poll_interval: float,
    ) -> None:
        self.settings = settings
        self.connect = connect
        self.alias = alias
        self.streams = list(streams)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.store: CallStore | None = None
        self.wake = threading.Event()
        # Failures whose recording failed with the connection: written on the next one, so a
        # lost call comes back after its backoff, not after its whole lease.
        self._unrecorded: list[Failure] = []
        # Calls leased by this lane and not started yet: handed back at shutdown even when the
        # lane is stuck in a hung call (see release_unstarted).
        self._unstarted: Sequence[EventRow] = ()

    # -- lifecycle -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run calls until ``stop``: on every wake-up (a notification the message lane saw) or
        every poll interval. A database outage is waited out with a growing delay."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    self.drain(stop)
                    failures = 0
                except Exception as exc:
                    failures += 1
                    delay = reconnect_delay(failures, self.settings)
                    logger.warning("calls lane: retrying in %.1fs: %s", delay, exc)
                    self.close()
                    stop.wait(delay)
                    continue
                self.wake.wait(self.poll_interval)
                self.wake.clear()
        finally:
            self.close()

    def release_unstarted(self) -> None:
        """Hand back the calls this lane leased and has not started, on a connection of its
        own: for the stopping relay's thread while this lane is stuck in a hung call."""
        rows, self._unstarted = self._unstarted, ()
        if rows:
            store = CallStore(self.connect(True))
            try:
                store.release(rows)
            finally:
                store.conn.close()

    def close(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            store.conn.close()
        connections.close_all()  # this thread's: kept open across calls (recycle_connections)

    # -- draining --------------------------------------------------------------------------

    def drain(self, stop: threading.Event | None = None) -> int:
        """Run due calls until none is left; return how many succeeded."""
        if self.store is None:
            self.store = CallStore(self.connect(True))
        if self._unrecorded:
            self.store.record_failures(self._unrecorded)
            self._unrecorded = []
        succeeded, busy_retries = 0, 0
        while stop is None or not stop.is_set():
            rows = self.store.lease_calls(self.streams, self.batch_size, self.settings.call_lease)
            for index, row in enumerate(rows):
                if stop is not None and stop.is_set():
                    self.store.release(rows[index:])  # due again at once, attempt given back
                    break
                self._unstarted = rows[index + 1 :]
                if row.attempts > self.settings.max_attempts:
                    self._bury(row)
                    continue
                result = self._run(row, self._plain_failure(row))
                succeeded += result.succeeded
            self._unstarted = ()
            ran_ordered, busy = self._drain_ordered(stop)
            succeeded += ran_ordered
            if len(rows) == self.batch_size or ran_ordered:
                continue
            if not busy or busy_retries >= _BUSY_STREAM_RETRIES:
                break
            busy_retries += 1
            time.sleep(_BUSY_STREAM_RETRY_SECONDS)
        return succeeded

    def _drain_ordered(self, stop: threading.Event | None) -> tuple[int, bool]:
        """One pass over the keep-order streams whose head is due; returns the calls that
        succeeded and whether a stream was being leased by another relay."""
        assert self.store is not None
        succeeded, busy = 0, False
        for stream in self.store.ordered_streams(self.streams):
            if stop is not None and stop.is_set():
                break
            rows = self.store.lease_ordered(stream, self.batch_size, self.settings.call_lease)
            if rows is None:
                busy = True
                continue
            for index, row in enumerate(rows):
                failure_rule, goes_on = self._head_failure(row)
                result = self._run(row, failure_rule)
                succeeded += result.succeeded
                if not result.ran:
                    # No longer ours, or held for a moment by someone else: hand back what is
                    # still leased to us (a row another relay took over has another lease).
                    self.store.release(rows[index:])
                    break
                if result.failure is not None and not goes_on():
                    self.store.release(rows[index + 1 :])
                    break
        return succeeded, busy

    # -- one call --------------------------------------------------------------------------

    def _run(self, row: EventRow, on_failure: Callable[[str, bool], Failure]) -> CallResult:
        assert self.store is not None
        call = to_call(row)
        if isinstance(call, NotRegistered):
            self._wait_for_a_relay_with(row, call.reason)
            return NOT_OURS
        if isinstance(call, str):
            logger.error("dead-lettering call event %s: %s", row.id, call)
            failure = on_failure(call, True)
            self.store.record_failures([failure])
            result = CallResult(ran=True, failure=failure)
            self._report(None, (), result)
            return result
        alias = self._alias_of(row)
        recycle_connections()
        try:
            result = run_call(
                call.function,
                call.args,
                call.kwargs,
                event_id=row.id,
                alias=alias,
                lock=("lock_leased_call", {"id": row.id, "lease": row.lease}),
                on_failure=on_failure,
                settings=self.settings,
                trace_headers=row.headers,
                keep_session=True,
                stored=row.task_result,
            )
        except Exception as exc:
            # The call's own transaction was lost (its session died): nothing of it committed.
            # Its attempt was counted by the lease; record why, on this lane's connection.
            logger.warning("call event %s: its transaction was lost: %s", row.id, exc)
            failure = on_failure(f"transaction lost: {describe_lost(exc)}", False)
            result = CallResult(ran=True, failure=failure, exception=exc)
            self._record_lost(failure)
        finally:
            recycle_connections()
        if result.ran:
            self._report(call.function, call.args, result)
        return result

    def _wait_for_a_relay_with(self, row: EventRow, reason: str) -> None:
        """Hand back a call whose function this process lacks (a relay deployed without its
        module), its attempt given back, due again after about 8 times RETRY_BACKOFF_BASE: it
        waits for a relay that has it (system check W001 names it), never dies of it."""
        assert self.store is not None
        logger.warning("call event %s handed back: %s", row.id, reason)
        self.store.hand_back(row, retry_delay(_NOT_REGISTERED_RETRY_AFTER, self.settings), reason)

    def _bury(self, row: EventRow) -> None:
        """A call leased more than ``MAX_ATTEMPTS`` times with no outcome recorded: each run
        ended with its relay (a crash, a kill), so running it again would end this one too."""
        assert self.store is not None
        error = (
            f"leased {row.attempts - 1} times without an outcome: each run ended with its "
            "relay process (killed, crashed, or stopped during the call)"
        )
        logger.error("dead-lettering call event %s: %s", row.id, error)
        failure = self._plain_failure(row)(error, True)
        self.store.record_failures([failure])
        result = CallResult(ran=True, failure=failure)
        self._report(None, (), result)

    def _record_lost(self, failure: Failure) -> None:
        assert self.store is not None
        try:
            # The call's dead session may hold the row's lock a moment longer than its client
            # noticed: the skipped write would leave the call to its whole lease.
            for _ in range(_LOST_LOCK_RETRIES):
                if self.store.record_failures([failure]):
                    break
                time.sleep(_BUSY_STREAM_RETRY_SECONDS)
        except DatabaseError:
            logger.warning(
                "could not record the failure of event %s; recorded on the next connection",
                failure.event_id,
            )
            self._unrecorded.append(failure)
            raise

    def _alias_of(self, row: EventRow) -> str:
        """The Django alias that recorded the call (stored with its arguments), when this
        process knows it; else the alias this relay serves."""
        using = row.args.get("using") if isinstance(row.args, dict) else None
        return using if isinstance(using, str) and using in connections else self.alias

    def _plain_failure(self, row: EventRow) -> Callable[[str, bool], Failure]:
        def rule(error: str, final: bool) -> Failure:
            dead = dies(row.attempts, max_attempts=self.settings.max_attempts, final=final)
            return Failure(row.id, error, retry_delay(row.attempts, self.settings), dead, False)

        return rule

    def _head_failure(
        self, row: EventRow
    ) -> tuple[Callable[[str, bool], Failure], Callable[[], bool]]:
        """The failure rule of a keep-order row, and whether its stream went on after it."""
        went_on = [True]

        def rule(error: str, final: bool) -> Failure:
            failure, went_on[0] = head_failure(
                row.id,
                error,
                attempts=row.attempts,
                delay=retry_delay(row.attempts, self.settings),
                final=final,
                policy=self.settings.keep_order_poison_policy,
                max_attempts=self.settings.max_attempts,
                bump=False,
            )
            if not went_on[0]:
                logger.warning(
                    "keep-order stream %r is blocked by event %s: %s",
                    row.stream,
                    row.id,
                    error,
                    extra={"event_id": row.id, "stream": row.stream},
                )
            return failure

        return rule, lambda: went_on[0]

    @staticmethod
    def _report(function: Any, args: Any, result: CallResult) -> None:
        """Count the call's outcome and send jaiminho's ``*_by_events_relay`` signal."""
        metrics.observe_call(result.outcome)
        signal = signals.signal_for(result.outcome, by_relay=True)
        try:
            signals.send_event_signal(signal, function, args)
        except BaseException:  # a receiver's SystemExit must not end the calls lane
            logger.exception("an outbox signal receiver raised")
