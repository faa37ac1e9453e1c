"""Helpers for users' own test suites: see what code wrote to the outbox, and deliver it.

Both work on Django's connection, inside the test's transaction: usable in ``TestCase`` (and
pytest-django's ``db``), where nothing is ever committed and no relay could see the rows.

``capture_events()`` reads the rows written inside its block when the block ends, so rows
rolled back in between are not listed, and neither are rows already published and deleted by
then (in ``TestCase`` nothing is published: nothing commits). ``drain()`` does in-process what
the relay does: messages go to a :class:`~pgoutbox.transports.memory.MemoryTransport` (or the
transport given), registered functions run, each in a savepoint; failures are recorded as the
relay records them (attempts, backoff, dead after ``MAX_ATTEMPTS``), and jaiminho's signals
are sent as in production: a publish-on-commit call's first run is its producer's
(``event_published``, ``event_failed_to_publish``, ``event_permanently_failed``), any other
run is a relay's (``*_by_events_relay``).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction

from pgoutbox import signals, tracing
from pgoutbox.conf import get_settings
from pgoutbox.policy import Failure, dies, failure_params, retry_delay
from pgoutbox.relay.dispatch import NotRegistered, to_call, to_message
from pgoutbox.relay.ordering import head_failure
from pgoutbox.relay.store import EventRow
from pgoutbox.sql import query
from pgoutbox.transports.base import Message, Transport
from pgoutbox.transports.memory import MemoryTransport

__all__ = ["CapturedEvent", "DrainResult", "capture_events", "drain"]


@dataclass(frozen=True)
class CapturedEvent:
    """An event as written. ``body`` is decoded: JSON → Python, else text, else bytes."""

    id: int
    kind: str
    destination: str | None
    body: Any
    headers: dict[str, str]
    stream: str
    function: str | None
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    message_id: uuid.UUID
    status: str


def _decode(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    try:
        return json.loads(text)
    except ValueError:
        return text


def _json(value: Any) -> Any:
    """A jsonb column read through Django's cursor arrives as text (JSONField decodes it)."""
    return json.loads(value) if isinstance(value, str) else value


@contextlib.contextmanager
def capture_events(*, using: str = "default") -> Iterator[list[CapturedEvent]]:
    """List (when the block ends) the events written inside the block on ``using``.

    ::

        with capture_events() as events:
            place_order()
        assert [e.destination for e in events] == ["/queue/orders"]
    """
    captured: list[CapturedEvent] = []
    with connections[using].cursor() as cursor:
        cursor.execute(query("testing_last_event_id"))
        (last_id,) = cursor.fetchone()
    yield captured
    with connections[using].cursor() as cursor:
        cursor.execute(query("testing_events_after"), {"after": last_id})
        rows = cursor.fetchall()
    for id_, kind, destination, body, headers, stream, function, args, message_id, status in rows:
        call = _json(args) if args is not None else {}
        captured.append(
            CapturedEvent(
                id=id_,
                kind=kind,
                destination=destination,
                body=_decode(bytes(body)),
                headers=_json(headers),
                stream=stream,
                function=function,
                args=call.get("args"),
                kwargs=call.get("kwargs"),
                message_id=message_id,
                status=status,
            )
        )


# A call's row, its outcome (done, failed, dead), and whether a relay would have run it: not
# the first run of a publish-on-commit call, which is its producer's on-commit hook's.
_CallOutcome = tuple[EventRow, str, bool]


@dataclass
class DrainResult:
    """What :func:`drain` did: messages published, functions run, failures ``(id, error)``."""

    published: list[Message] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)
    transport: Transport | None = None


def drain(
    *, using: str = "default", transport: Transport | None = None, max_rounds: int = 100
) -> DrainResult:
    """Publish every due pending event and run every due call, in this process and the current
    transaction, until none is left (a call may write new events); return what happened.

    Due: pending and ``available_at`` reached, and also calls still under their producer's
    publish-on-commit lease (in a test the commit that would run them never comes). Rows
    waiting for a retry are not due. Raises ``RuntimeError`` if events keep appearing after
    ``max_rounds`` rounds. The signals of a round's calls are sent once its writes are done
    (committed, or in ``TestCase`` at the end of the round: nothing commits there).
    """
    result = DrainResult(transport=transport or MemoryTransport())
    for _ in range(max_rounds):
        outcomes: list[_CallOutcome] = []
        with transaction.atomic(using=using):
            found = _drain_round(using, result, outcomes)
        for row, outcome, by_relay in outcomes:
            _send_signal(row, outcome, by_relay=by_relay)
        if not found:
            return result
    raise RuntimeError(f"drain(): events still due after {max_rounds} rounds")


def _drain_round(using: str, result: DrainResult, outcomes: list[_CallOutcome]) -> bool:
    """One round over the due rows; each call's outcome (``done``, ``failed``, ``dead``) and
    whether a relay would have run it go to ``outcomes``. False when nothing was due."""
    settings = get_settings()
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(query("testing_due_events"))
        rows = [_due_row(*row) for row in cursor.fetchall()]
    if not rows:
        return False
    done: list[int] = []
    failures: list[Failure] = []
    blocked: set[str] = set()  # keep-order streams whose head failed
    for row, ordered in rows:
        if ordered and row.stream in blocked:
            continue
        error, final = _deliver(row, using, result)
        if error is None:
            done.append(row.id)
            if row.kind == "call":
                outcomes.append((row, "done", ordered or row.attempts > 0))
            continue
        attempts = row.attempts + 1
        delay = retry_delay(attempts, settings)
        result.failures.append((row.id, error))
        if not ordered:
            dead = dies(attempts, max_attempts=settings.max_attempts, final=final)
            failures.append(Failure(row.id, error, delay, dead=dead))
            if row.kind == "call":
                outcomes.append((row, "dead" if dead else "failed", row.attempts > 0))
            continue
        failure, goes_on = head_failure(
            row.id,
            error,
            attempts=attempts,
            delay=delay,
            final=final,
            policy=settings.keep_order_poison_policy,
            max_attempts=settings.max_attempts,
        )
        failures.append(failure)
        if row.kind == "call":
            outcomes.append((row, "dead" if failure.dead else "failed", True))
        if not goes_on:
            blocked.add(row.stream)
    with connection.cursor() as cursor:
        if done:
            finished = "delete_events" if settings.delete_after_send else "mark_sent"
            cursor.execute(query(finished), {"ids": done})
        if failures:
            cursor.execute(query("record_failures"), failure_params(failures))
    return True


def _send_signal(row: EventRow, outcome: str, *, by_relay: bool) -> None:
    """jaiminho's signal for a call's outcome, the relay's or the producer's."""
    call = to_call(row)
    if isinstance(call, str | NotRegistered):  # no producer of this process wrote it
        function, args, by_relay = None, (), True
    else:
        function, args = call.function, call.args
    signals.send_event_signal(signals.signal_for(outcome, by_relay=by_relay), function, args)


def _due_row(
    id_: int,
    stream: str,
    kind: str,
    destination: str | None,
    body: bytes,
    headers: Any,
    message_id: uuid.UUID,
    attempts: int,
    function: str | None,
    args: Any,
    ordered: bool,
) -> tuple[EventRow, bool]:
    row = EventRow(
        id_,
        stream,
        kind,
        destination,
        bytes(body),
        _json(headers),
        message_id,
        attempts,
        function,
        _json(args),
    )
    return row, ordered


def _deliver(row: EventRow, using: str, result: DrainResult) -> tuple[str | None, bool]:
    """Publish or run one row; return ``(error or None, whether the error is final)``."""
    settings = get_settings()
    if row.kind == "call":
        call = to_call(row)
        if isinstance(call, str):
            return call, True
        if isinstance(call, NotRegistered):  # in a test, every function must be registered
            return call.reason, True
        try:
            with (
                transaction.atomic(using=using),
                tracing.call_span(call.function, row.headers, event_id=row.id),
            ):
                call.function(*call.args, **call.kwargs)
        except Exception as exc:
            final = isinstance(exc, settings.non_retryable_exceptions)
            return f"{type(exc).__name__}: {exc}", final
        result.calls.append(str(row.function))
        return None, False
    message = to_message(row, max_body_bytes=settings.max_body_bytes)
    if isinstance(message, str):
        return message, True
    assert result.transport is not None
    outcome = tracing.traced_publish(result.transport.publish_batch, [message])
    if message.event_id in outcome.confirmed:
        result.published.append(message)
        return None, False
    reason = outcome.rejected.get(message.event_id) or outcome.failure or "not confirmed"
    return f"broker rejected: {reason}", False
