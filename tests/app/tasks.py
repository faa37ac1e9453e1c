"""Django tasks of the test app (Django >= 6.0), run by pgoutbox's relay; PgOutboxConfig.ready()
imports this module because settings.TASKS names pgoutbox's backend. Runs are recorded in
``tests.app.outbox.RUNS``."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from django.tasks import TaskContext, task

from tests.app.outbox import record


@task
def add(a: int, b: int) -> int:
    record("add", (a, b), {})
    return a + b


@task(priority=0)
def step(name: str) -> str:
    record("step", (name,), {})
    return name


@task(queue_name="ordered")
def ordered_step(n: int) -> int:
    record("ordered_step", (n,), {})
    return n


@task(takes_context=True)
def flaky(context: TaskContext, fail_until: int) -> int:
    """Fails its first attempts, succeeds on attempt ``fail_until + 1``; returns the attempt."""
    record("flaky", (context.attempt,), {})
    if context.attempt <= fail_until:
        raise ValueError(f"attempt {context.attempt} fails")
    return context.attempt


@task
def always_fails() -> None:
    record("always_fails", (), {})
    raise RuntimeError("this task always fails")


@task
def exits() -> None:
    record("exits", (), {})
    raise SystemExit(3)


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("cannot print me")


@task
def raises_unprintable() -> None:
    record("raises_unprintable", (), {})
    raise Unprintable()


@task
def raises_nul() -> None:
    record("raises_nul", (), {})
    raise ValueError("a\x00b")


@task
def returns_object() -> Any:
    record("returns_object", (), {})
    return object()


@task
def writes_then_fails(marker: str) -> None:
    """Writes a row, then raises: the row must roll back with the failed attempt."""
    from tests.app.models import Order

    Order.objects.create(reference=marker)
    raise RuntimeError("after writing")


@task
def killed_once(marker: str) -> str:
    """The first run SIGKILLs its own process (a relay dying mid-task); later runs succeed."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)
    record("killed_once", (marker,), {})
    return "survived"


GATE = threading.Event()


@task
def waits_for_gate() -> None:
    """Runs until a test sets ``GATE`` (the relay runs in the test's process)."""
    GATE.wait(20)


SESSIONS: list[int] = []


@task
def waits_for_gate_on_its_session() -> None:
    """Records its PostgreSQL session in ``SESSIONS``, then waits for ``GATE``."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        SESSIONS.append(int(cursor.fetchone()[0]))
    GATE.wait(20)


@task
def backend_pid() -> int:
    """The PostgreSQL session the task ran on."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return int(pid)


@task
def changes_session(statements: list[str]) -> None:
    """Runs ``statements`` (SET ...) on its connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


@task
def reports_session() -> list[str]:
    """The session state the task sees (see tests.app.outbox.SESSION_QUERY)."""
    from django.db import connection

    from tests.app.outbox import SESSION_QUERY

    with connection.cursor() as cursor:
        cursor.execute(SESSION_QUERY)
        return [str(value) for value in cursor.fetchone()]
