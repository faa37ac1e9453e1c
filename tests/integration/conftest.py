"""Fixtures of the function-event tests (decorated functions live in tests/app/outbox.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.consumer import expire_test_queues
from tests.support.function_events import SignalLog


@pytest.fixture
def signal_log() -> Iterator[SignalLog]:
    log = SignalLog().connect()
    yield log
    log.disconnect()


@pytest.fixture(scope="session")
def test_queue_policy() -> None:
    """Test queues expire by a broker policy (see tests.support.consumer)."""
    expire_test_queues()


@pytest.fixture
def queue_name(test_queue_policy: None) -> str:
    """A fresh queue name, ``pgoutbox-test-<hex>``."""
    return f"pgoutbox-test-{uuid.uuid4().hex[:12]}"
