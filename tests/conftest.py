"""Fixtures on real services: PostgreSQL (through pytest-django) and RabbitMQ over STOMP."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import django
import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg import sql

from pgoutbox.producer import functions
from pgoutbox.runner import build_relay
from tests.app import outbox
from tests.support.factories import closing_factory
from tests.support.pgbouncer import PgBouncer
from tests.support.relay_runner import RelayThread
from tests.support.services import require_tcp, stomp_address
from tests.support.stomp_consumer import StompConsumer

pytest_plugins = ["tests.support.broker_fixtures"]

# Django Tasks (pgoutbox.tasks) exist from Django 6.0 on: before, their tests are not collected.
collect_ignore_glob = [] if django.VERSION >= (6, 0) else ["*/test_tasks*.py"]


@pytest.fixture(scope="session")
def stomp_broker() -> tuple[str, int]:
    """RabbitMQ's STOMP address; fails under CI (skips locally) when it is unreachable."""
    host, port = stomp_address()
    require_tcp("RabbitMQ STOMP", host, port)
    return host, port


@pytest.fixture
def stomp_consumer(stomp_broker: tuple[str, int]) -> Iterator[Callable[..., StompConsumer]]:
    """Factory: a started subscriber on a fresh ``/topic/...`` (or the given destination)."""

    def make(destination: str | None = None) -> StompConsumer:
        return StompConsumer(*stomp_broker, destination=destination).start()

    yield from closing_factory(make, StompConsumer.stop)


@pytest.fixture
def relay_thread(
    transactional_db: None, stomp_broker: tuple[str, int]
) -> Iterator[Callable[..., RelayThread]]:
    """Factory: a relay built from settings (STOMP transport unless one is given), running in
    a thread against the test database; stopped at teardown."""

    def make(**kwargs: Any) -> RelayThread:
        kwargs.setdefault("listen", True)
        return RelayThread(build_relay(**kwargs)).start()

    yield from closing_factory(make, RelayThread.stop)


@pytest.fixture
def empty_database() -> Iterator[dict[str, Any]]:
    """A new, empty database on the test server (psycopg connection parameters); dropped after."""
    db = settings.DATABASES["default"]
    params = {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "dbname": "postgres"}
    name = f"pgoutbox_scratch_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield {**params, "dbname": name}
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pgbouncer(django_db_setup: None) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode on the "bouncer" alias's port, for the whole session;
    stopped before the test database is dropped (its pooled sessions would keep it open)."""

    target = settings.DATABASES["default"]
    bouncer = PgBouncer(settings.PGBOUNCER_PORT, target["HOST"], int(target["PORT"])).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture
def runs() -> Iterator[None]:
    """A clean record of decorated-function runs."""
    outbox.reset()
    yield
    outbox.reset()


@pytest.fixture
def producer_dies_after_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The producer's on-commit hook does nothing, as if the process died right after COMMIT."""
    monkeypatch.setattr(functions, "_run_after_commit_enabled", False)


@pytest.fixture
def database_setting(transactional_db: None) -> Iterator[Any]:
    """``ALTER DATABASE <test db> SET name = value`` for new sessions; reset at teardown."""
    changed: list[str] = []

    def set_(name: str, value: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER DATABASE {connection.ops.quote_name(connection.settings_dict['NAME'])} "
                f"SET {name} = %s",
                [value],
            )
        changed.append(name)

    yield set_
    with connection.cursor() as cursor:
        for name in changed:
            cursor.execute(
                f"ALTER DATABASE {connection.ops.quote_name(connection.settings_dict['NAME'])} "
                f"RESET {name}"
            )


@pytest.fixture
def adaptive(transactional_db: None) -> Iterator[None]:
    """pgoutbox.notify = 'adaptive' for the test database (the listener reads it at connect)
    and for this test's Django connection."""
    name = sql.Identifier(connection.settings_dict["NAME"])
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("ALTER DATABASE {} SET pgoutbox.notify = 'adaptive'").format(name).as_string()
        )
        cursor.execute("SET pgoutbox.notify = 'adaptive'")
    yield
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("ALTER DATABASE {} RESET pgoutbox.notify").format(name).as_string())
        cursor.execute("RESET pgoutbox.notify")
