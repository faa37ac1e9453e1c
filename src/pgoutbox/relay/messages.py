"""The message lane: claim a batch of messages, publish it with broker confirmations, delete
what was confirmed, record what was not, commit.

Its transaction holds no user code: it lasts a claim, the broker's confirmations (at most
``STOMP_CONNECT_TIMEOUT + STOMP_RECEIPT_TIMEOUT``) and a delete; the relay's session settings
(db.py) keep every server-side timeout above that. If the transaction is lost anyway (the
session killed, the database restarted), the batch is settled on the next connection: what the
broker confirmed is deleted, the rest counts an attempt and backs off, so a batch that keeps
failing grows its delay and dies after ``MAX_ATTEMPTS`` like any other failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pgoutbox import metrics, tracing
from pgoutbox.conf import Settings
from pgoutbox.errors import TransportUnavailable
from pgoutbox.policy import Failure, dies, reconnect_delay, retry_delay
from pgoutbox.relay.dispatch import to_message
from pgoutbox.relay.store import EventRow, MessageStore
from pgoutbox.transports.base import Message, PublishOutcome, Transport

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchReport:
    claimed: int  # rows locked; more than published when the byte bound cut the batch
    delivered: int
    failed: int
    transport_failed: bool
    more: bool = False  # the batch came back full (rows or bytes): more may be waiting


@dataclass(frozen=True)
class _InFlight:
    """A batch whose transaction has not committed yet, and what the broker confirmed of it."""

    rows: Sequence[EventRow]
    confirmed: frozenset[int] = frozenset()


class MessageLane:
    """Publishes messages through one transport, on the store it is given."""

    def __init__(
        self,
        *,
        settings: Settings,
        transport: Transport,
        streams: Sequence[str],
        batch_size: int,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.streams = list(streams)
        self.batch_size = batch_size
        self.store: MessageStore | None = None
        self.broker_error: str | None = None  # the last broker failure, until a publish succeeds
        self.retry_at = 0.0  # monotonic time before which the broker is left alone
        self._transport_failures = 0
        self._in_flight: _InFlight | None = None

    def relay_batch(self) -> BatchReport:
        """Claim, publish, delete or reschedule, commit: one batch."""
        if self.store is None:
            raise RuntimeError("the message lane has no store; open the relay first")
        store = self.store
        claim = store.claim_batch(self.streams, self.batch_size, self.settings.max_batch_bytes)
        if not claim.rows:
            store.abandon_batch()
            return BatchReport(0, 0, 0, transport_failed=False)
        self._in_flight = _InFlight(claim.rows)
        messages: list[Message] = []
        failures: list[Failure] = []
        for row in claim.rows:
            message = to_message(row, max_body_bytes=self.settings.max_body_bytes)
            if isinstance(message, str):
                logger.error("dead-lettering invalid event %s: %s", row.id, message)
                failures.append(Failure(row.id, message, delay=0.0, dead=True))
            else:
                messages.append(message)
        outcome = tracing.traced_publish(self._publish, messages)  # a span when traced
        self._in_flight = _InFlight(claim.rows, outcome.confirmed)
        attempts = {row.id: row.attempts + 1 for row in claim.rows}
        for event_id, reason in outcome.rejected.items():
            failures.append(self._failure(event_id, f"broker rejected: {reason}", attempts))
        if outcome.unconfirmed:
            # The broker's fault, not the event's: an attempt is counted, never a death.
            delay = self._note_transport_failure(outcome.failure or "not confirmed")
            failures.extend(
                Failure(event_id, outcome.failure or "not confirmed", delay)
                for event_id in outcome.unconfirmed
            )
        elif messages:
            self._transport_failures = 0
            self.broker_error = None
            self.retry_at = 0.0
        store.finish_batch(outcome.confirmed, failures)
        self._in_flight = None
        metrics.observe_batch(
            size=len(claim.rows),
            published=len(outcome.confirmed),
            failed=sum(not f.dead for f in failures),
            dead=sum(f.dead for f in failures),
        )
        metrics.observe_published(
            row.created_at for row in claim.rows if row.id in outcome.confirmed and row.created_at
        )
        if failures:
            logger.warning(
                "batch of %d: %d delivered, %d failed",
                len(claim.rows),
                len(outcome.confirmed),
                len(failures),
            )
        return BatchReport(
            claimed=claim.claimed,
            delivered=len(outcome.confirmed),
            failed=len(failures),
            transport_failed=bool(outcome.unconfirmed),
            more=claim.claimed >= self.batch_size or claim.claimed > len(claim.rows),
        )

    def settle_lost_batch(self, cause: str) -> None:
        """On a new connection, write down the batch whose transaction was lost: delete what
        the broker confirmed, count an attempt (with backoff) on the rest, naming ``cause``."""
        lost, self._in_flight = self._in_flight, None
        if lost is None or self.store is None:
            return
        attempts = {row.id: row.attempts + 1 for row in lost.rows}
        error = f"batch not committed: {cause}"
        failures = [
            self._failure(r.id, error, attempts) for r in lost.rows if r.id not in lost.confirmed
        ]
        logger.warning(
            "settling a batch whose transaction was lost: %d confirmed deleted, %d retried",
            len(lost.confirmed),
            len(failures),
        )
        self.store.finish_batch(lost.confirmed, failures)

    def _failure(self, event_id: int, error: str, attempts: dict[int, int]) -> Failure:
        tried = attempts[event_id]
        dead = dies(tried, max_attempts=self.settings.max_attempts)
        return Failure(event_id, error, retry_delay(tried, self.settings), dead=dead)

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
        self.retry_at = time.monotonic() + delay
        logger.warning("broker unavailable, retrying in %.1fs: %s", delay, reason)
        return delay

    # -- ordered message streams (relay/ordered_messages.py) ---------------------------------

    def publish_in_order(self, messages: Sequence[Message]) -> tuple[PublishOutcome, float]:
        """Publish for an ordered stream with this lane's broker bookkeeping (backoff, the
        last error); return the outcome and the delay given to unconfirmed messages."""
        outcome = self._publish(messages)
        if outcome.unconfirmed:
            return outcome, self._note_transport_failure(outcome.failure or "not confirmed")
        if messages:
            self._transport_failures = 0
            self.broker_error = None
            self.retry_at = 0.0
        return outcome, 0.0
