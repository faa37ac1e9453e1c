"""Fixtures on real services: PostgreSQL (through pytest-django) and RabbitMQ over STOMP."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings

from pgoutbox.runner import build_relay
from tests.support.factories import closing_factory
from tests.support.pgbouncer import PgBouncer
from tests.support.relay_runner import RelayThread
from tests.support.services import require_tcp, stomp_address
from tests.support.stomp_consumer import StompConsumer


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
    from django.conf import settings

    target = settings.DATABASES["default"]
    bouncer = PgBouncer(settings.PGBOUNCER_PORT, target["HOST"], int(target["PORT"])).start()
    yield bouncer
    bouncer.stop()
