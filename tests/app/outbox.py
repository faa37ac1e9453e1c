"""Decorated functions of the test app; PgOutboxConfig.ready() imports this module (an app's
``outbox`` module), which is how listeners learn them. Every run is recorded in ``RUNS``."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from pgoutbox import save_to_outbox, save_to_outbox_stream


@dataclass(frozen=True)
class Run:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    thread: str
    at: float


RUNS: list[Run] = []
_lock = threading.Lock()


def record(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with _lock:
        RUNS.append(Run(name, args, kwargs, threading.current_thread().name, time.monotonic()))


def runs(name: str | None = None) -> list[Run]:
    with _lock:
        return [r for r in RUNS if name is None or r.name == name]


def reset() -> None:
    with _lock:
        RUNS.clear()


@save_to_outbox
def notify(*args: Any, **kwargs: Any) -> str:
    record("notify", args, kwargs)
    return "swallowed"  # the decorated call returns None, as jaiminho's does


@save_to_outbox_stream("my-stream")
def notify_to_stream(*args: Any, **kwargs: Any) -> None:
    record("notify_to_stream", args, kwargs)


@save_to_outbox
def always_fails(*args: Any, **kwargs: Any) -> None:
    record("always_fails", args, kwargs)
    raise RuntimeError("boom")


@save_to_outbox
def create_order(reference: str) -> None:
    from tests.app.models import Order

    record("create_order", (reference,), {})
    Order.objects.create(reference=reference)


@save_to_outbox_stream("ordered", overwrite_strategy_with="keep-order")
def notify_ordered(token: str) -> None:
    record("notify_ordered", (token,), {})


@save_to_outbox_stream("ordered-b", overwrite_strategy_with="keep-order")
def notify_ordered_b(token: str) -> None:
    record("notify_ordered_b", (token,), {})


@save_to_outbox_stream("poisoned", overwrite_strategy_with="keep-order")
def poisoned_stream(n: int, *, fail: bool = False) -> None:
    record("poisoned_stream", (n,), {"fail": fail})
    if fail:
        raise RuntimeError(f"poison {n}")


# Released by tests; a hung call waits on it (never longer than HANG_LIMIT seconds).
GATE = threading.Event()
HANG_LIMIT = 20.0


@save_to_outbox
def hang(token: str) -> None:
    record("hang", (token,), {})
    GATE.wait(HANG_LIMIT)


@save_to_outbox
def sleep_for(seconds: float) -> None:
    record("sleep_for", (seconds,), {})
    time.sleep(seconds)


@save_to_outbox
def exits(code: int) -> None:
    record("exits", (code,), {})
    raise SystemExit(code)


@save_to_outbox
def traced(token: str) -> None:
    """Records the span it runs in (tests of pgoutbox.tracing; OpenTelemetry imported here
    only, so the app loads without it)."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    record("traced", (token,), {"trace_id": context.trace_id, "span_id": context.span_id})


# The session state a call sees (the relay's Django connection is reused from call to call).
SESSION_QUERY = (
    "SELECT current_user::text, current_setting('search_path'), "
    "current_setting('statement_timeout'), current_setting('TimeZone')"
)


@save_to_outbox_stream("session", overwrite_strategy_with="keep-order")
def changes_session(statements: list[str]) -> None:
    from django.db import connection

    record("changes_session", (), {})
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


@save_to_outbox_stream("session", overwrite_strategy_with="keep-order")
def reports_session() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(SESSION_QUERY)
        record("reports_session", tuple(cursor.fetchone()), {})
