"""django-jaiminho's decorators: ``@save_to_outbox`` and ``@save_to_outbox_stream``.

Calling a decorated function records the call (``kind = 'call'``: the function's import path
and its arguments as JSON, encoded with ``DEFAULT_ENCODER``) in the caller's transaction and
returns None, as jaiminho does. What runs it depends on the strategy:

- ``publish-on-commit`` (default): the row is always written in the transaction (durable,
  unlike jaiminho, which writes none by default), leased for ``PUBLISH_ON_COMMIT_LEASE``
  seconds. After COMMIT, an on-commit hook locks the row, runs the function, and deletes the
  row (or marks it sent, ``DELETE_AFTER_SEND = False``) in one transaction with the
  function's own writes. If the producer dies first, or the hook cannot run, the listener
  runs it once the lease is over. The hook never runs a row a relay holds or has tried.
- ``keep-order``: the producer does not run it; the relay runs the stream's events strictly
  in id order, and producers of the stream are serialized by an advisory lock from the insert
  to their commit, so id order is commit order.

Either way the function receives its arguments after a JSON round trip (a ``date`` comes back
as a str), the same whoever runs it. Register the module (registry.py) so listeners know it.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar, overload

from django.db import DEFAULT_DB_ALIAS, connections, router, transaction

from pgoutbox import metrics, registry, signals, tracing
from pgoutbox.call_runner import run_call
from pgoutbox.conf import PUBLISH_STRATEGIES, get_settings
from pgoutbox.errors import InvalidEventError, SerializationError
from pgoutbox.models import OutboxEvent
from pgoutbox.policy import Failure, dies, retry_delay
from pgoutbox.producer import ordering
from pgoutbox.sql import query
from pgoutbox.validation import stream_error

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# Tests switch the on-commit hook off to play a producer that dies right after COMMIT.
_run_after_commit_enabled = True


@overload
def save_to_outbox(func: F, *, using: str | None = None) -> F: ...
@overload
def save_to_outbox(func: None = None, *, using: str | None = None) -> Callable[[F], F]: ...
def save_to_outbox(func: F | None = None, *, using: str | None = None) -> F | Callable[[F], F]:
    """Record each call of ``func`` in the outbox (global ``PUBLISH_STRATEGY``, no stream).

    Usable bare (``@save_to_outbox``) or called (``@save_to_outbox(using="alias")``).
    """

    def decorate(f: F) -> F:
        return _outboxed(f, stream="", strategy=None, using=using)

    return decorate(func) if func is not None else decorate


def save_to_outbox_stream(
    stream: str, overwrite_strategy_with: str | None = None, using: str | None = None
) -> Callable[[F], F]:
    """Record each call in the outbox on ``stream``, optionally with its own strategy
    (``"keep-order"`` makes this function's stream strictly ordered)."""
    error = stream_error(stream)
    if error is not None:
        raise InvalidEventError(error)
    if overwrite_strategy_with is not None and overwrite_strategy_with not in PUBLISH_STRATEGIES:
        raise ValueError(
            f"overwrite_strategy_with must be one of {PUBLISH_STRATEGIES}, "
            f"got {overwrite_strategy_with!r}"
        )

    def decorate(f: F) -> F:
        return _outboxed(f, stream=stream, strategy=overwrite_strategy_with, using=using)

    return decorate


def _outboxed(func: F, *, stream: str, strategy: str | None, using: str | None) -> F:
    path = registry.register(func)

    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> None:
        record_call(func, path, args, kwargs, stream=stream, strategy=strategy, using=using)

    inner.original_func = func  # type: ignore[attr-defined]
    return inner  # type: ignore[return-value]


def encode_call(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    encoder: type[json.JSONEncoder],
    *,
    using: str | None = None,
) -> str:
    """Return the JSON stored in ``args``: ``{"args": [...], "kwargs": {...}}``, plus
    ``"using"``: the Django alias that recorded the call, where a relay runs it.

    Raises :class:`SerializationError` (a ``TypeError``) naming what cannot be encoded.
    """
    try:
        stored: dict[str, Any] = {"args": list(args), "kwargs": kwargs}
        if using is not None:
            stored["using"] = using
        return json.dumps(stored, cls=encoder, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"outbox call arguments are not JSON-serializable: {exc}") from exc


def record_call(
    func: Callable[..., Any],
    path: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    stream: str,
    strategy: str | None,
    using: str | None,
) -> None:
    """Write the call's row in the caller's transaction (and, publish-on-commit, schedule the
    producer's run after COMMIT). Raises ``TypeError`` before writing anything when the
    arguments cannot be encoded.

    The row goes on ``using``, else the alias Django's router gives for writes of outbox
    events, else ``default``: the alias of the caller's transaction, never the relay's
    ``PGOUTBOX['DATABASE']``. The alias is stored with the arguments, so a relay runs the call
    in a transaction on the same alias.
    """
    settings = get_settings()
    alias = using or router.db_for_write(OutboxEvent) or DEFAULT_DB_ALIAS
    encoded = encode_call(args, kwargs, settings.default_encoder, using=alias)
    trace_headers = tracing.context_headers()
    params: dict[str, Any] = {
        "stream": stream,
        "function": path,
        "args": encoded,
        "headers": json.dumps(trace_headers),
    }
    if (strategy or settings.publish_strategy) == "keep-order":
        with connections[alias].cursor() as cursor:
            ordering.lock_stream(cursor, stream, connections[alias])
            cursor.execute(query("insert_ordered_call"), params)
            cursor.execute(query("notify_calls"), {"stream": stream})
        return
    params["lease"] = settings.publish_on_commit_lease
    with connections[alias].cursor() as cursor:
        cursor.execute(query("insert_call"), params)
        (event_id,) = cursor.fetchone()
    decoded = json.loads(encoded)
    hook = functools.partial(
        run_after_commit,
        func,
        event_id,
        tuple(decoded["args"]),
        decoded["kwargs"],
        alias,
        trace_headers=trace_headers,
    )
    transaction.on_commit(hook, using=alias, robust=True)


def run_after_commit(
    func: Callable[..., Any],
    event_id: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    alias: str,
    *,
    trace_headers: dict[str, str] | None = None,
) -> None:
    """The producer runs its own committed call: lock the row, run, delete it, commit.

    Never raises but a ``KeyboardInterrupt`` (Ctrl-C stops the process after the call's
    failure is recorded): anything the function raises, ``SystemExit`` included, is the call's
    failure, recorded, and the relay retries it; on any trouble of the hook's own the row
    stays pending and the listener runs it after the lease. The function's own writes commit
    with the row's removal, or roll back alone (a savepoint) when it raises.
    """
    if not _run_after_commit_enabled:
        return
    settings = get_settings()

    def on_failure(error: str, final: bool) -> Failure:
        dead = dies(1, max_attempts=settings.max_attempts, final=final)
        return Failure(event_id, error, retry_delay(1, settings), dead=dead)

    try:
        result = run_call(
            func,
            args,
            kwargs,
            event_id=event_id,
            alias=alias,
            lock=("claim_call", {"id": event_id}),
            on_failure=on_failure,
            settings=settings,
            trace_headers=trace_headers,
        )
    except Exception:
        logger.exception(
            "on-commit run of event %s failed; the relay will run it",
            event_id,
            extra={"event_id": event_id},
        )
        return
    if not result.ran:
        return  # a relay holds it, ran it or tried it: it is the relay's now
    metrics.observe_call(result.outcome)
    outcome = signals.signal_for(result.outcome, by_relay=False)
    # After the atomic block: runs now, or after the commit of an enclosing one.
    transaction.on_commit(
        functools.partial(signals.send_event_signal, outcome, func, args), using=alias
    )
    if isinstance(result.exception, KeyboardInterrupt):
        raise result.exception
