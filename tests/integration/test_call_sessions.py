"""A call (a registered function; Django tasks: test_tasks_sessions.py) that changes its session
(SET search_path, SET ROLE, SET statement_timeout, SET TIME ZONE) on the relay's Django
connection: its bookkeeping still runs, and the next call sees the session as it was."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.db import connection, transaction

from pgoutbox.models import OutboxEvent
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox
from tests.support.function_events import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("runs")]


@pytest.fixture
def changes() -> Iterator[list[str]]:
    """SET statements a call runs on its session, with a role of its own (no privileges)."""
    role = f"pgoutbox_test_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role}")
    yield [
        "SET search_path = pg_catalog",
        "SET statement_timeout = '4321ms'",
        "SET TIME ZONE 'Asia/Tokyo'",
        f"SET ROLE {role}",
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE {role}")


def session_now() -> tuple[str, ...]:
    """The state of a fresh session of the test database, as SESSION_QUERY reads it."""
    with connection.cursor() as cursor:
        cursor.execute(outbox.SESSION_QUERY)
        return tuple(str(value) for value in cursor.fetchone())


def test_a_function_that_changes_its_session_leaves_nothing_to_the_next(relay_thread, changes):
    expected = session_now()
    relay_thread(transport=MemoryTransport(), poll_interval=0.05)
    with transaction.atomic():
        outbox.changes_session(changes)
        outbox.reports_session()
    wait_until(lambda: outbox.runs("reports_session"))
    wait_until(lambda: not OutboxEvent.objects.exists())
    assert len(outbox.runs("changes_session")) == 1  # ran once: its row's removal worked
    assert outbox.runs("reports_session")[0].args == expected
