"""Run one recorded call of a registered function: the producer's on-commit hook and the
relay's calls lane both come here, so a call means the same whoever runs it.

The call runs in ``transaction.atomic()`` on the Django alias that recorded it. Its row is
locked first (only if it is still the runner's: ``lock`` says how), the function runs in a
savepoint, and the row is removed (or marked sent) or its failure recorded in that same
transaction: the function's writes and the row's removal commit together. Anything the
function raises, ``BaseException`` included (``SystemExit``, a ``KeyboardInterrupt`` raised by
user code), is that call's failure, recorded with its cause; it never escapes as the
process's death.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from pgoutbox import tracing
from pgoutbox.conf import Settings
from pgoutbox.policy import Failure, failure_params
from pgoutbox.sql import query

logger = logging.getLogger(__name__)

# Django 6.1 renamed transaction.savepoint() (deprecated) to savepoint_create().
_savepoint_create = getattr(transaction, "savepoint_create", transaction.savepoint)

# Session settings a call may change with SET (rather than SET LOCAL) on the relay's Django
# connection, which is reused from call to call, are set back after each call, in its
# transaction, so neither the call's own bookkeeping (a search_path without pgoutbox's tables,
# a role without its privileges) nor the next call inherits them. The settings watched are the
# columns of the session_settings query (search_path, role, statement_timeout, TimeZone, ...).
# Other session state (temporary tables, session advisory locks, prepared statements) is the
# call's to clean up. Per Django connection (of the thread running calls): its database
# connection, and the settings' names and values read on it before any call ran.
_sessions: weakref.WeakKeyDictionary[
    BaseDatabaseWrapper, tuple[Any, list[str], tuple[Any, ...]]
] = weakref.WeakKeyDictionary()

# Given the error text and whether the exception is final (NON_RETRYABLE_EXCEPTIONS, an invalid
# row), return the failure to record: the caller knows the attempts and the stream's policy.
FailureRule = Callable[[str, bool], Failure]


@dataclass(frozen=True)
class CallResult:
    """What became of a call. ``ran=False``: the row was no longer the runner's (another
    runner has it, ran it, or its lease moved on): nothing ran, nothing was written."""

    ran: bool
    failure: Failure | None = None
    exception: BaseException | None = None

    @property
    def succeeded(self) -> bool:
        return self.ran and self.failure is None

    @property
    def outcome(self) -> str:
        """``done``, ``failed`` (retried later) or ``dead``: how metrics and signals name it."""
        if self.failure is None:
            return "done"
        return "dead" if self.failure.dead else "failed"


NOT_OURS = CallResult(ran=False)


class RecordsOutcome:
    """A registered callable that runs knowing its row and records its own outcome (a Django
    task's result row). :func:`run_call` calls :meth:`run` in the call's savepoint and, when it
    raises, :meth:`record_failure` after the savepoint's rollback, in the same transaction."""

    def run(
        self,
        event_id: int,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        alias: str,
        stored: Sequence[Any] = (),
    ) -> None:
        """``stored``: what the caller read of the call's outcome row when it leased it (may
        be nothing)."""
        raise NotImplementedError

    def record_failure(
        self, event_id: int, exc: BaseException, failure: Failure, alias: str
    ) -> None:
        raise NotImplementedError


def run_call(
    function: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    event_id: int,
    alias: str,
    lock: tuple[str, Mapping[str, Any]],
    on_failure: FailureRule,
    settings: Settings,
    trace_headers: Any = None,
    keep_session: bool = False,
    stored: Sequence[Any] = (),
) -> CallResult:
    """Lock the row with the named query ``lock`` (no row: :data:`NOT_OURS`), run the function,
    then remove the row or record its failure, all in one transaction on ``alias``.
    ``keep_session`` (the relay's calls lane, whose connection serves call after call): the
    session settings the function changed are set back before the row is removed. ``stored``
    goes to a :class:`RecordsOutcome` function (a Django task's result row as leased).

    Raises only when the database fails around the call (the transaction is lost): the row is
    then untouched and its lease or the caller decides what comes next. With OpenTelemetry,
    the function runs in a span whose parent is the context in ``trace_headers`` (the row's
    headers: the producer's span).
    """
    lock_query, lock_params = lock
    with transaction.atomic(using=alias):
        with connections[alias].cursor() as cursor:
            cursor.execute(query(lock_query), lock_params)
            if cursor.fetchone() is None:
                return NOT_OURS
        if keep_session:
            remember_session(alias)
        # A savepoint of our own rather than a nested atomic(): what the function raises is
        # its failure; what the savepoint's release raises is the database's, and ends this
        # transaction (the caller then has the row's lease or pending state to fall back on).
        savepoint = _savepoint_create(using=alias)
        try:
            with tracing.call_span(function, trace_headers, event_id=event_id):
                if isinstance(function, RecordsOutcome):
                    function.run(event_id, args, kwargs, alias, stored)
                else:
                    function(*args, **kwargs)
                    restore_session(alias)
        except BaseException as exc:  # user code: every exception is the call's failure
            transaction.savepoint_rollback(savepoint, using=alias)
            failure = on_failure(describe(exc), isinstance(exc, settings.non_retryable_exceptions))
            logger.warning(
                "call event %s raised%s",
                event_id,
                "; it is dead" if failure.dead else "; it will be retried",
                exc_info=True,
                extra={"event_id": event_id},
            )
            capture_exception(settings, exc)
            with connections[alias].cursor() as cursor:
                cursor.execute(query("record_failures"), failure_params([failure]))
            if isinstance(function, RecordsOutcome):
                function.record_failure(event_id, exc, failure, alias)
            return CallResult(ran=True, failure=failure, exception=exc)
        transaction.savepoint_commit(savepoint, using=alias)
        done = "delete_events" if settings.delete_after_send else "mark_sent"
        with connections[alias].cursor() as cursor:
            cursor.execute(query(done), {"ids": [event_id]})
    return CallResult(ran=True)


def remember_session(alias: str) -> None:
    """Read the session settings of ``alias``'s connection, once per database connection,
    before a call runs on it."""
    conn = connections[alias]
    known = _sessions.get(conn)
    if known is not None and known[0] is conn.connection:
        return
    with conn.cursor() as cursor:
        cursor.execute(query("session_settings"))
        values = tuple(cursor.fetchone())
        names = [column.name for column in cursor.description]
    _sessions[conn] = (conn.connection, names, values)


def restore_session(alias: str) -> None:
    """Set back, in the current transaction, the session settings a call changed on
    ``alias``'s connection since :func:`remember_session` (nothing when it was not called)."""
    conn = connections[alias]
    known = _sessions.get(conn)
    if known is None or known[0] is not conn.connection:
        return
    _, names, values = known
    # On the database connection itself: Django's cursor would cost as much as the query.
    if tuple(conn.connection.execute(query("session_settings")).fetchone()) == values:
        return
    with conn.cursor() as cursor:
        cursor.execute(query("restore_session_settings"), {"names": names, "values": list(values)})
        changed = [name for name, _ in cursor.fetchall()]
    logger.info("a call changed its session's %s: set back", ", ".join(changed))


def describe(exc: BaseException) -> str:
    """``"Type: message"``; user code's exception may fail even to print itself, or hold a NUL
    character, which PostgreSQL's text refuses (the failure could never be recorded)."""
    try:
        text = str(exc).strip()
    except BaseException:  # its __str__ is user code too
        text = "<its str() raised>"
    return f"{type(exc).__name__}: {text}".replace("\x00", "\\x00")


def describe_lost(exc: BaseException) -> str:
    """The reason a call's transaction was lost: the error and what it arose from (a killed
    session shows as "connection closed" on top of the server's own message)."""
    reasons: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(reasons) < 3:
        reason = describe(seen)
        if reason not in reasons:
            reasons.append(reason)
        seen = seen.__cause__ or seen.__context__
    return "; from ".join(reasons)


def capture_exception(settings: Settings, exc: BaseException) -> None:
    """Give ``exc`` to ``CAPTURE_EXCEPTION`` (e.g. Sentry's), which must never stop the caller."""
    if settings.capture_exception is None:
        return
    try:
        settings.capture_exception(exc)
    except Exception:
        logger.exception("CAPTURE_EXCEPTION raised")
