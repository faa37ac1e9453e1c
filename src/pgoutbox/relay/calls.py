"""Run ``kind = 'call'`` rows in the relay: registered functions only, at least once.

A row is done when its function returns; an exception counts an attempt (backoff, dead after
``MAX_ATTEMPTS``, at once for ``NON_RETRYABLE_EXCEPTIONS``); an unregistered function is dead
at once. Keep-order rows run stream by stream in id order, and a failing head stops its
stream as :mod:`pgoutbox.relay.ordering` decides. The signals are returned, to be sent once
the batch is committed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pgoutbox import signals
from pgoutbox.conf import Settings
from pgoutbox.policy import Failure, dies, retry_delay
from pgoutbox.relay.dispatch import to_call
from pgoutbox.relay.ordering import head_failure
from pgoutbox.relay.store import EventRow

logger = logging.getLogger(__name__)


@dataclass
class CallsOutcome:
    done: list[int] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    # Signals to send after the commit that makes them true.
    notices: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class _Attempt:
    error: str | None  # None: the function returned
    final: bool = False
    function: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()


def run_calls(rows: Sequence[EventRow], settings: Settings) -> CallsOutcome:
    """Run unordered call rows, each on its own: one failing never holds back another."""
    outcome = CallsOutcome()
    for row in rows:
        attempt = _attempt(row, settings)
        if attempt.error is None:
            outcome.done.append(row.id)
            _notice(outcome, signals.event_published_by_events_relay, attempt)
            continue
        dead = dies(row.attempts + 1, max_attempts=settings.max_attempts, final=attempt.final)
        outcome.failures.append(Failure(row.id, attempt.error, _delay(row, settings), dead=dead))
        _notice_failure(outcome, attempt, dead)
    return outcome


def run_ordered(rows: Sequence[EventRow], settings: Settings) -> CallsOutcome:
    """Run keep-order rows (grouped by stream, each in id order); a blocking failure stops the
    rest of its stream, which stays pending and untouched."""
    outcome = CallsOutcome()
    blocked: set[str] = set()
    for row in rows:
        if row.stream in blocked:
            continue
        attempt = _attempt(row, settings)
        if attempt.error is None:
            outcome.done.append(row.id)
            _notice(outcome, signals.event_published_by_events_relay, attempt)
            continue
        failure, goes_on = head_failure(
            row.id,
            attempt.error,
            attempts=row.attempts + 1,
            delay=_delay(row, settings),
            final=attempt.final,
            policy=settings.keep_order_poison_policy,
            max_attempts=settings.max_attempts,
        )
        outcome.failures.append(failure)
        _notice_failure(outcome, attempt, dies=goes_on)
        if not goes_on:
            blocked.add(row.stream)
            logger.warning(
                "keep-order stream %r is blocked by event %s: %s",
                row.stream,
                row.id,
                attempt.error,
                extra={"event_id": row.id, "stream": row.stream},
            )
    return outcome


def _attempt(row: EventRow, settings: Settings) -> _Attempt:
    call = to_call(row)
    if isinstance(call, str):
        logger.error("dead-lettering call event %s: %s", row.id, call)
        return _Attempt(call, final=True)
    try:
        call.function(*call.args, **call.kwargs)
    except Exception as exc:
        logger.warning(
            "call event %s (%s) raised",
            row.id,
            row.function,
            exc_info=True,
            extra={"event_id": row.id},
        )
        capture_exception(settings, exc)
        final = isinstance(exc, settings.non_retryable_exceptions)
        return _Attempt(f"{type(exc).__name__}: {exc}", final, call.function, call.args)
    return _Attempt(None, function=call.function, args=call.args)


def capture_exception(settings: Settings, exc: Exception) -> None:
    """Give ``exc`` to ``CAPTURE_EXCEPTION`` (e.g. Sentry's), which must never stop the caller."""
    if settings.capture_exception is None:
        return
    try:
        settings.capture_exception(exc)
    except Exception:
        logger.exception("CAPTURE_EXCEPTION raised")


def _delay(row: EventRow, settings: Settings) -> float:
    return retry_delay(row.attempts + 1, settings)


def _notice(outcome: CallsOutcome, signal: Any, attempt: _Attempt) -> None:
    outcome.notices.append(
        functools.partial(signals.send_event_signal, signal, attempt.function, attempt.args)
    )


def _notice_failure(outcome: CallsOutcome, attempt: _Attempt, dies: bool) -> None:
    if dies:
        _notice(outcome, signals.event_permanently_failed_by_events_relay, attempt)
    else:
        _notice(outcome, signals.event_failed_to_publish_by_events_relay, attempt)
