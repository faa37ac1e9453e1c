"""Fixtures on real services: PostgreSQL (through pytest-django) and RabbitMQ over STOMP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pgoutbox.runner import build_relay
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
    consumers: list[StompConsumer] = []

    def make(destination: str | None = None) -> StompConsumer:
        consumer = StompConsumer(*stomp_broker, destination=destination).start()
        consumers.append(consumer)
        return consumer

    yield make
    for consumer in consumers:
        consumer.stop()


@pytest.fixture
def relay_thread(
    transactional_db: None, stomp_broker: tuple[str, int]
) -> Iterator[Callable[..., RelayThread]]:
    """Factory: a relay built from settings (STOMP transport unless one is given), running in
    a thread against the test database; stopped at teardown."""
    running: list[RelayThread] = []

    def make(**kwargs: Any) -> RelayThread:
        kwargs.setdefault("listen", True)
        runner = RelayThread(build_relay(**kwargs)).start()
        running.append(runner)
        return runner

    yield make
    for runner in running:
        runner.stop()
