"""PostgreSQL drops the relay's connections: it reconnects, LISTENs again, drains, loses nothing."""

from __future__ import annotations

import time

import pytest
from django.db import connection

import pgoutbox

pytestmark = pytest.mark.django_db(transaction=True)


def _relay_backends() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE application_name = 'pgoutbox' AND datname = current_database()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def _wait_for_backends(exclude: set[int], count: int, timeout: float = 15) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = _relay_backends() - exclude
        if len(pids) >= count:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"relay did not reconnect within {timeout}s")


def test_terminated_connections_are_replaced_and_nothing_is_lost(
    settings, stomp_consumer, relay_thread
):
    consumer = stomp_consumer()
    settings.PGOUTBOX = {**settings.PGOUTBOX, "RECONNECT_BACKOFF_MAX": 0.5}
    relay_thread(poll_interval=30)  # deliveries below must come from LISTEN or the reconnect drain
    old = _wait_for_backends(set(), 2)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", [list(old)])
    during = str(pgoutbox.send(consumer.destination, "while reconnecting"))
    _wait_for_backends(old, 2)
    assert [m.message_id for m in consumer.wait_for(1, timeout=10)] == [during]

    time.sleep(0.3)  # the new LISTEN is in place once the drain after it has run
    after = str(pgoutbox.send(consumer.destination, "after reconnect"))
    received = consumer.wait_for(2, timeout=10)
    assert [m.message_id for m in received] == [during, after]
