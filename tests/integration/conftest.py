"""Fixtures of the function-event tests (decorated functions live in tests/app/outbox.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from pgoutbox.producer import functions
from tests.app import outbox
from tests.support.consumer import expire_test_queues
from tests.support.function_events import SignalLog


@pytest.fixture
def runs() -> Iterator[None]:
    """A clean record of decorated-function runs."""
    outbox.reset()
    yield
    outbox.reset()


@pytest.fixture
def signal_log() -> Iterator[SignalLog]:
    log = SignalLog().connect()
    yield log
    log.disconnect()


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


@pytest.fixture(scope="session")
def test_queue_policy() -> None:
    """Test queues expire by a broker policy (see tests.support.consumer)."""
    expire_test_queues()


@pytest.fixture
def queue_name(test_queue_policy: None) -> str:
    """A fresh queue name, ``pgoutbox-test-<hex>``."""
    return f"pgoutbox-test-{uuid.uuid4().hex[:12]}"
