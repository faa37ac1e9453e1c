"""Ordered message streams: each stream's messages published in id order, which producers make
commit order (producer/ordering.py), by one relay at a time per stream.

A pass is one transaction on the message lane's connection. It finds the ordered streams whose
head message is due, takes each one's relay lock (a transaction-level advisory lock: other
relays skip the stream until this transaction ends), locks the stream's due rows from its head
and publishes them in waves on the lane's broker connection. A wave holds the next message of
every stream whose previous message the broker confirmed: streams are pipelined with each
other, but within a stream a message is only sent once the one before it is confirmed, so a
refusal never lets a later message overtake it. Then it deletes what was confirmed, records
the failures and commits, releasing the streams.

A failing head follows ``KEEP_ORDER_POISON_POLICY`` (relay/ordering.py), as keep-order calls
do; a broker outage counts an attempt on the messages in flight, never kills them. If the
relay dies, its locks go with its connection and the next relay starts again from each head:
at worst the messages confirmed in the killed pass come again, in the same order.

The lane runs a pass only when woken (a producer's ``pgoutbox_ordered`` notification, a poll,
a reconnect) or when a retry it scheduled is due, so unordered traffic never pays for it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from pgoutbox import metrics
from pgoutbox.db import translate_errors
from pgoutbox.policy import Failure, retry_delay
from pgoutbox.relay.dispatch import to_message
from pgoutbox.relay.messages import MessageLane
from pgoutbox.relay.ordering import head_failure
from pgoutbox.relay.store import EventRow, claim_stream_run
from pgoutbox.sql import query
from pgoutbox.transports.base import Message

logger = logging.getLogger(__name__)

# No new wave starts this long after the claim: the transaction is idle while waves wait for
# the broker, and the relay's sessions allow one broker wait plus 10 s (db.py) of that.
_WAVE_BUDGET_SECONDS = 5.0
# A stream another relay holds: look again this soon (its pass takes milliseconds), so a row
# committed while it held the stream is not left for the poll; give up after a few tries.
_BUSY_STREAM_RETRY_SECONDS = 0.01
_BUSY_STREAM_RETRIES = 20
# At most this many messages of one stream per pass (one wave each): a stream with a backlog
# leaves room in the batch for the others, and a pass stays a few broker round trips long.
_MAX_RUN = 16
# Streams looked at per pass, per row of the batch: others may be held by other relays.
_STREAMS_PER_ROW = 4


@dataclass(frozen=True)
class PassReport:
    delivered: int
    transport_failed: bool
    more: bool  # it delivered or skipped a dead head: rows may be waiting behind


@dataclass(frozen=True)
class _InFlight:
    """A pass whose transaction has not committed: the rows sent and what was confirmed."""

    sent: Sequence[EventRow]
    confirmed: frozenset[int]


class OrderedMessages:
    """Publishes the ordered message streams through a :class:`MessageLane`'s transport and
    store; driven by the engine's thread."""

    def __init__(self, lane: MessageLane, *, poll_interval: float) -> None:
        self.lane = lane
        self.poll_interval = poll_interval
        self.wanted = True  # woken: run a pass at the next drain
        self.due_at = math.inf  # monotonic time of a retry this lane scheduled
        # A poll of its own: wake-ups that keep the listener from timing out (a busy outbox)
        # must not keep rows without a notification (a plain INSERT) waiting.
        self._last_pass = -math.inf
        self._busy_retries = 0
        self._in_flight: _InFlight | None = None

    def wake(self) -> None:
        self.wanted = True

    def drain(self, stop: threading.Event | None = None) -> int:
        """When woken or due, run passes until one finds nothing more; return the delivered."""
        now = time.monotonic()
        if not self.wanted and now < self.due_at and now - self._last_pass < self.poll_interval:
            return 0
        self.wanted, self.due_at, self._last_pass = False, math.inf, now
        delivered = 0
        while stop is None or not stop.is_set():
            if time.monotonic() < self.lane.retry_at:
                self.due_at = min(self.due_at, self.lane.retry_at)
                break
            report = self.relay_pass()
            delivered += report.delivered
            if report.transport_failed or not report.more:
                break
        return delivered

    def relay_pass(self) -> PassReport:
        """Claim the due ordered streams, publish them in waves, delete or record, commit."""
        store = self.lane.store
        if store is None:
            raise RuntimeError("the message lane has no store; open the relay first")
        store.begin()
        runs, busy = self._claim(store.conn)
        self._note_busy(busy)
        if not runs:
            store.abandon_batch()
            return PassReport(0, transport_failed=False, more=False)
        claimed = sum(len(run) for run in runs)
        sent: list[EventRow] = []
        confirmed: set[int] = set()
        failures: list[Failure] = []
        transport_failed, skipped_dead = False, False
        started = time.monotonic()
        while runs and not transport_failed:
            if time.monotonic() - started > _WAVE_BUDGET_SECONDS:
                break
            heads: dict[int, deque[EventRow]] = {}
            wave: list[Message] = []
            for run in runs:
                message = to_message(run[0], max_body_bytes=self.lane.settings.max_body_bytes)
                if isinstance(message, str):
                    failure, goes_on = self._head_failure(run[0], message, final=True)
                    failures.append(failure)
                    skipped_dead |= goes_on
                    _advance(run, goes_on)
                else:
                    heads[message.event_id] = run
                    wave.append(message)
            sent.extend(run[0] for run in heads.values())
            self._in_flight = _InFlight(tuple(sent), frozenset(confirmed))
            outcome, outage_delay = self.lane.publish_in_order(wave)
            confirmed |= outcome.confirmed
            self._in_flight = _InFlight(tuple(sent), frozenset(confirmed))
            for event_id, run in heads.items():
                if event_id in outcome.confirmed:
                    run.popleft()
                elif event_id in outcome.rejected:
                    error = f"broker rejected: {outcome.rejected[event_id]}"
                    failure, goes_on = self._head_failure(run[0], error, final=False)
                    failures.append(failure)
                    skipped_dead |= goes_on
                    _advance(run, goes_on)
                else:  # the broker's fault, not the event's: an attempt, never a death
                    failures.append(
                        Failure(event_id, outcome.failure or "not confirmed", outage_delay)
                    )
                    transport_failed = True
            runs = [run for run in runs if run]
        store.finish_batch(confirmed, failures)
        self._in_flight = None
        self._schedule_retry(failures)
        self._observe(sent, claimed, confirmed, failures)
        return PassReport(
            len(confirmed), transport_failed, more=bool(confirmed) or skipped_dead or bool(runs)
        )

    def settle_lost_batch(self, cause: str) -> None:
        """On a new connection, write down the pass whose transaction was lost: delete what the
        broker confirmed, count a failure on each stream's first message it did not."""
        lost, self._in_flight = self._in_flight, None
        store = self.lane.store
        if lost is None or store is None:
            return
        failures: list[Failure] = []
        failed_streams: set[str] = set()
        for row in lost.sent:
            if row.id not in lost.confirmed and row.stream not in failed_streams:
                failed_streams.add(row.stream)
                error = f"batch not committed: {cause}"
                failures.append(self._head_failure(row, error, final=False)[0])
        logger.warning(
            "settling an ordered pass whose transaction was lost: %d confirmed deleted, "
            "%d streams retried",
            len(lost.confirmed),
            len(failures),
        )
        store.finish_batch(lost.confirmed, failures)

    # -- helpers ---------------------------------------------------------------------------

    def _claim(self, conn: psycopg.Connection[Any]) -> tuple[list[deque[EventRow]], bool]:
        """Lock the due ordered streams this relay can take (up to the batch's rows and
        bytes, at least a head each); return their runs and whether another relay held one."""
        limit, max_bytes = self.lane.batch_size, self.lane.settings.max_batch_bytes
        runs: list[deque[EventRow]] = []
        busy, taken, size = False, 0, 0
        with translate_errors(), conn.cursor() as cur:
            cur.execute(
                query("ordered_streams"),
                {"streams": self.lane.streams, "calls": False, "limit": limit * _STREAMS_PER_ROW},
            )
            for (stream,) in cur.fetchall():
                if taken >= limit or size >= max_bytes:
                    break
                cur.execute(query("lock_ordered_messages"), {"stream": stream})
                locked = cur.fetchone()
                if not locked or not locked[0]:
                    busy = True
                    continue
                run: deque[EventRow] = deque()
                most = min(limit - taken, _MAX_RUN)
                for row in claim_stream_run(cur, stream, most, calls=False):
                    if run and size >= max_bytes:
                        break
                    run.append(row)
                    size += len(row.body)
                if run:
                    runs.append(run)
                    taken += len(run)
        return runs, busy

    def _head_failure(self, row: EventRow, error: str, *, final: bool) -> tuple[Failure, bool]:
        settings = self.lane.settings
        attempts = row.attempts + 1
        failure, goes_on = head_failure(
            row.id,
            error,
            attempts=attempts,
            delay=retry_delay(attempts, settings),
            final=final,
            policy=settings.keep_order_poison_policy,
            max_attempts=settings.max_attempts,
        )
        log = logger.error if failure.dead else logger.warning
        log(
            "ordered stream %r: event %s %s: %s",
            row.stream,
            row.id,
            "dead-lettered" if failure.dead else "blocks the stream",
            error,
            extra={"event_id": row.id, "stream": row.stream},
        )
        return failure, goes_on

    def _note_busy(self, busy: bool) -> None:
        if not busy:
            self._busy_retries = 0
        elif self._busy_retries < _BUSY_STREAM_RETRIES:
            self._busy_retries += 1
            self.due_at = min(self.due_at, time.monotonic() + _BUSY_STREAM_RETRY_SECONDS)

    def _schedule_retry(self, failures: Sequence[Failure]) -> None:
        """Come back when the first head that failed here is due again."""
        delays = [f.delay for f in failures if not f.dead]
        if delays:
            self.due_at = min(self.due_at, time.monotonic() + min(delays))

    @staticmethod
    def _observe(
        sent: Sequence[EventRow], claimed: int, confirmed: set[int], failures: Sequence[Failure]
    ) -> None:
        metrics.observe_batch(
            size=claimed,
            published=len(confirmed),
            failed=sum(not f.dead for f in failures),
            dead=sum(f.dead for f in failures),
        )
        metrics.observe_published(
            row.created_at for row in sent if row.id in confirmed and row.created_at
        )


def _advance(run: deque[EventRow], goes_on: bool) -> None:
    """After a failed head: drop it when the stream goes on (it is dead), else stop the run."""
    if goes_on:
        run.popleft()
    else:
        run.clear()
