"""Fixtures of the fault suite: event accounting, relay processes, plain-SQL producers and an
outside view of the test database. Everything runs against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support import database
from tests.support.factories import closing_factory
from tests.support.ledger import CountingConsumer, Ledger
from tests.support.processes import RelayProcess, relay_env


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def counting_consumer(
    stomp_broker: tuple[str, int],
) -> Iterator[Callable[..., CountingConsumer]]:
    """Factory: a started :class:`CountingConsumer` on a fresh topic (or the given destination)."""

    def make(destination: str | None = None) -> CountingConsumer:
        return CountingConsumer(*stomp_broker, destination=destination).start()

    yield from closing_factory(make, CountingConsumer.stop)


@pytest.fixture
def relay_process(
    transactional_db: None, stomp_broker: tuple[str, int], tmp_path: Path
) -> Iterator[Callable[..., RelayProcess]]:
    """Factory: start ``python -m django <command> <args>`` on the test database with
    ``PGOUTBOX`` keys overridden; every process is killed and reaped at teardown."""
    started = 0

    def make(
        command: str = "outbox_listen",
        args: Sequence[str] = (),
        *,
        overrides: dict[str, Any] | None = None,
        root_log: str | None = None,
        **extra_env: str,
    ) -> RelayProcess:
        nonlocal started
        log = tmp_path / f"{command}-{started}.log"
        started += 1
        env = relay_env(overrides, root_log=root_log, **extra_env)
        return RelayProcess([command, *args], env=env, log=log).start()

    yield from closing_factory(make, RelayProcess.stop)


@pytest.fixture
def pg(transactional_db: None) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the test database, outside Django and outside the relay."""
    conn = database.connect()
    yield conn
    conn.close()


@pytest.fixture
def producer_thread(
    transactional_db: None, ledger: Ledger
) -> Iterator[Callable[..., database.ProducerThread]]:
    """Factory: a started :class:`database.ProducerThread` recording into ``ledger``;
    stopped at teardown even when the test failed half-way."""

    def make(destination: str, **kwargs: Any) -> database.ProducerThread:
        return database.ProducerThread(ledger, destination, **kwargs).start()

    yield from closing_factory(make, database.ProducerThread.stop)


@pytest.fixture
def pg_session(transactional_db: None) -> Iterator[Callable[..., psycopg.Connection[Any]]]:
    """Factory: more connections to the test database (see :func:`database.connect`), all
    closed at teardown."""
    yield from closing_factory(database.connect, psycopg.Connection.close)


@pytest.fixture
def sql_producer(
    transactional_db: None, ledger: Ledger
) -> Iterator[Callable[[str], database.SqlProducer]]:
    """Factory: a plain-SQL producer for a destination, recording into ``ledger``."""

    def make(destination: str) -> database.SqlProducer:
        return database.SqlProducer(ledger, destination)

    yield from closing_factory(make, database.SqlProducer.close)


_FIGURES = pytest.StashKey[list[tuple[str, dict[str, Any]]]]()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A dict a scenario fills with its counts (events, kills, lost, duplicates, seconds);
    printed in the terminal summary, so every run reports what it measured."""
    measured: dict[str, Any] = {}
    request.config.stash.setdefault(_FIGURES, []).append((request.node.name, measured))
    return measured


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    collected = config.stash.get(_FIGURES, [])
    if not collected:
        return
    terminalreporter.section("fault scenario figures")
    for name, measured in collected:
        if measured:
            values = ", ".join(f"{key}={value}" for key, value in measured.items())
            terminalreporter.write_line(f"{name}: {values}")
