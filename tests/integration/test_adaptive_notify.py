"""pgoutbox.notify = 'adaptive': producers skip NOTIFY while the listener is busy draining,
and no event they wrote waits for the poll."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from psycopg import sql

import pgoutbox
from pgoutbox import db
from pgoutbox.conf import get_settings

pytestmark = pytest.mark.django_db(transaction=True)

# The "in flight" advisory lock of migrations_sql/0002_adaptive_notify.sql: a producer holds it
# (shared, until commit) exactly when it found the listener busy.
IN_FLIGHT = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = 1885826936 AND objid = 2"  # noqa: E501


@pytest.fixture
def adaptive() -> Iterator[None]:
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


def no_listener_is_busy(timeout: float = 5.0) -> bool:
    """True once no session holds the busy lock; a closed session's backend releases it a
    moment after the client has closed the connection."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock_shared(1885826936, 1)")
            if cursor.fetchone() == (True,):
                cursor.execute("SELECT pg_advisory_unlock_shared(1885826936, 1)")
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)


def send_many(destination: str, count: int) -> None:
    """Commit ``count`` events in one transaction without NOTIFY: a backlog to drain."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL pgoutbox.notify = 'off'")
        for n in range(count):
            pgoutbox.send(destination, {"backlog": n})


def test_event_committed_while_listener_is_busy_arrives_without_waiting_for_the_poll(
    adaptive, stomp_consumer, relay_thread
):
    consumer = stomp_consumer()
    relay = relay_thread(poll_interval=60).relay  # a poll cannot explain any delivery below
    consumer.quiet_for(0.3)  # past the start-up drain
    send_many(consumer.destination, 3000)
    pgoutbox.send(consumer.destination, "wake up")  # NOTIFYs: the listener is idle

    consumer.wait_for(700)  # past the first batch: the listener drains holding its busy lock
    with transaction.atomic():
        message_id = str(pgoutbox.send(consumer.destination, "written while busy"))
        with connection.cursor() as cursor:
            cursor.execute(IN_FLIGHT)
            [(skipped,)] = cursor.fetchall()
        time.sleep(0.5)  # the listener stays busy: this producer skipped NOTIFY and is open
    committed_at = time.time()

    assert skipped == 1, "the producer should have found the listener busy and skipped NOTIFY"
    received = {m.message_id: m for m in consumer.wait_for(3002, timeout=10)}
    assert len(received) == 3002
    assert received[message_id].received_at - committed_at < 5.0  # the poll is 60 s
    assert relay.busy_lock is not None


def test_listener_goes_idle_after_the_burst_so_the_next_event_notifies(
    adaptive, stomp_consumer, relay_thread
):
    consumer = stomp_consumer()
    relay = relay_thread(poll_interval=60).relay
    consumer.quiet_for(0.3)
    send_many(consumer.destination, 1000)
    pgoutbox.send(consumer.destination, "wake up")
    consumer.wait_for(1001, timeout=10)

    deadline = time.monotonic() + 5
    while relay.busy_lock is not None and relay.busy_lock.held and time.monotonic() < deadline:
        time.sleep(0.01)
    assert relay.busy_lock is not None and not relay.busy_lock.held

    with transaction.atomic():
        message_id = str(pgoutbox.send(consumer.destination, "after the burst"))
        with connection.cursor() as cursor:
            cursor.execute(IN_FLIGHT)
            [(skipped,)] = cursor.fetchall()
    committed_at = time.time()
    assert skipped == 0, "an idle listener must be woken by NOTIFY"
    received = {m.message_id: m for m in consumer.wait_for(1002, timeout=5)}
    assert received[message_id].received_at - committed_at < 5.0  # the poll is 60 s


def test_busy_lock_goes_with_the_listener_connection(adaptive):
    params = db.connection_params(get_settings().database)
    assert no_listener_is_busy()
    with psycopg.connect(**params, autocommit=True) as listener:
        assert listener.execute("SELECT pgoutbox_relay_busy_v2()").fetchone() == (True,)
        with psycopg.connect(**params, autocommit=True) as other:
            assert other.execute("SELECT pgoutbox_relay_busy_v2()").fetchone() == (False,)
    # The session that held it is gone: producers NOTIFY again.
    assert no_listener_is_busy()


def test_a_notify_arrives_for_an_idle_listener_and_none_while_it_is_busy(adaptive):
    params = db.connection_params(get_settings().database)
    assert no_listener_is_busy()
    with (
        psycopg.connect(**params, autocommit=True) as listen,
        psycopg.connect(**params, autocommit=True) as busy,
    ):
        listen.execute("LISTEN pgoutbox")
        pgoutbox.send("/queue/pgoutbox-never-relayed", "idle")
        assert len(list(listen.notifies(timeout=2, stop_after=1))) == 1

        assert busy.execute("SELECT pgoutbox_relay_busy_v2()").fetchone() == (True,)
        pgoutbox.send("/queue/pgoutbox-never-relayed", "busy")
        assert list(listen.notifies(timeout=0.5)) == []

        assert busy.execute("SELECT pgoutbox_relay_idle_v2()").fetchone() == (True,)
        pgoutbox.send("/queue/pgoutbox-never-relayed", "idle again")
        assert len(list(listen.notifies(timeout=2, stop_after=1))) == 1


def test_a_busy_listener_never_spins_while_a_skipping_producer_stays_open(
    adaptive, stomp_consumer, relay_thread
):
    """Issue: a busy listener claimed every 5 ms (~200 claims/s) for as long as a producer
    that skipped NOTIFY kept its transaction open."""
    consumer = stomp_consumer()
    relay = relay_thread(poll_interval=60).relay
    consumer.quiet_for(0.3)
    send_many(consumer.destination, 2000)
    pgoutbox.send(consumer.destination, "wake up")
    consumer.wait_for(700)  # the listener is busy, holding its lock
    claims = 0
    relay_batch = relay.messages.relay_batch

    def counted() -> Any:
        nonlocal claims
        claims += 1
        return relay_batch()

    with transaction.atomic():
        message_id = str(pgoutbox.send(consumer.destination, "written while busy"))
        consumer.wait_for(2001, timeout=10)  # the backlog is gone; this producer is in flight
        relay.messages.relay_batch = counted  # type: ignore[method-assign]
        time.sleep(2.0)
        claims_while_open = claims
    committed_at = time.time()
    received = {m.message_id: m for m in consumer.wait_for(2002, timeout=10)}
    assert claims_while_open <= 60, f"{claims_while_open} claims in 2 s"
    assert received[message_id].received_at - committed_at < 5.0  # the poll is 60 s
