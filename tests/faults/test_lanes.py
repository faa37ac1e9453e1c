"""Two lanes, one engine: user code never runs inside the message batch's transaction.

Each test reproduces a way the single-lane relay broke on a real PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction

import pgoutbox
from pgoutbox.models import OutboxEvent
from pgoutbox.transports.base import PublishOutcome
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox
from tests.app.models import Order
from tests.support import database
from tests.support.function_events import pgoutbox_settings, wait_until

pytestmark = pytest.mark.usefixtures("runs")

# Short backoffs, and a publish-on-commit lease that runs out at once when the producer's hook
# is off (the relay's calls lane then has the call).
FAST_RETRIES = {
    "RETRY_BACKOFF_BASE": 0.05,
    "RETRY_BACKOFF_MAX": 0.1,
    "PUBLISH_ON_COMMIT_LEASE": 0.05,
}


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """The gate hung calls wait on; opened at teardown whatever happens."""
    outbox.GATE.clear()
    yield outbox.GATE
    outbox.GATE.set()


def relay_sessions_in_transaction() -> list[tuple[str, Any, Any]]:
    """pgoutbox's own sessions that hold a transaction or a snapshot right now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state, backend_xid, backend_xmin, query FROM pg_stat_activity "
            "WHERE application_name = 'pgoutbox' AND datname = current_database() "
            "AND (state LIKE 'idle in transaction%%' OR backend_xmin IS NOT NULL "
            "     OR backend_xid IS NOT NULL)"
        )
        return cursor.fetchall()


def test_a_server_idle_timeout_does_not_make_a_batch_come_back_forever(
    relay_thread, stomp_consumer, database_setting, producer_dies_after_commit
):
    """Issue: with a 1 s idle_in_transaction_session_timeout, 10 messages and a 1.5 s call were
    delivered 60 times in 10 s and the call ran 5 times, all rows left pending."""
    database_setting("idle_in_transaction_session_timeout", "1s")
    consumer = stomp_consumer()
    with pgoutbox_settings(**FAST_RETRIES, MAX_ATTEMPTS=2):
        relay_thread()
        with transaction.atomic():
            ids = {str(pgoutbox.send(consumer.destination, n)) for n in range(10)}
            outbox.sleep_for(1.5)
        consumer.wait_for(10, timeout=10)
        wait_until(lambda: OutboxEvent.objects.filter(status="dead").exists(), timeout=15)
    received = consumer.quiet_for(1.0)  # a republished batch would show by now
    assert sorted(m.message_id for m in received) == sorted(ids)  # each exactly once
    [call] = OutboxEvent.objects.all()
    # The call's own transaction is the user's: the database's timeout ends it, and that is
    # counted like any failure, with its cause, until it is dead.
    assert (call.kind, call.status, call.attempts) == ("call", "dead", 2)
    assert "idle-in-transaction" in call.last_error
    assert len(outbox.runs("sleep_for")) == 2


def test_a_hung_call_neither_delays_messages_nor_holds_the_relays_transactions(
    relay_thread, stomp_consumer, gate, producer_dies_after_commit
):
    consumer = stomp_consumer()
    with pgoutbox_settings(**FAST_RETRIES, POLL_INTERVAL=30.0):
        relay = relay_thread()
        outbox.hang("first")
        time.sleep(0.1)  # the publish-on-commit lease runs out; the next wake-up takes the call
        relay.relay.calls.wake.set()
        wait_until(lambda: outbox.runs("hang"))
        committed = time.monotonic()
        message_id = pgoutbox.send(consumer.destination, "behind a hung call")
        [received] = consumer.wait_for(1, timeout=5)
        elapsed = time.monotonic() - committed
        assert received.message_id == str(message_id)
        assert elapsed < 1.0  # pushed (POLL_INTERVAL is 30 s), not behind the call
        wait_until(lambda: not OutboxEvent.objects.filter(kind="message").exists())
        time.sleep(0.2)
        assert relay_sessions_in_transaction() == []  # no lock, xid or snapshot of the relay's
        gate.set()
        wait_until(lambda: not OutboxEvent.objects.exists())


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]  # bound, never listening: connections are refused


def test_calls_run_while_the_broker_is_down(
    relay_thread, closed_port, producer_dies_after_commit, caplog
):
    """Issue: during a broker outage, calls (which need no broker) waited out its backoff."""
    with pgoutbox_settings(
        **FAST_RETRIES, STOMP_HOSTS=[("127.0.0.1", closed_port)], POLL_INTERVAL=0.2
    ):
        relay_thread()
        pgoutbox.send("/queue/pgoutbox-broker-down", "waits for the broker")

        def broker_failures() -> int:
            return sum("broker unavailable" in r.getMessage() for r in caplog.records)

        wait_until(lambda: broker_failures() >= 4, timeout=15)  # the next try is 3 s or more away
        committed = time.monotonic()
        outbox.notify("runs anyway")
        wait_until(lambda: outbox.runs("notify"), timeout=10)
        assert outbox.runs("notify")[0].at - committed < 1.0
        wait_until(lambda: OutboxEvent.objects.count() == 1)
    assert OutboxEvent.objects.get().kind == "message"  # the message waits for the broker


def test_a_function_raising_system_exit_is_that_calls_failure(
    relay_thread, stomp_consumer, producer_dies_after_commit
):
    consumer = stomp_consumer()
    with pgoutbox_settings(**FAST_RETRIES, MAX_ATTEMPTS=2):
        relay = relay_thread()
        outbox.exits(3)
        message_id = pgoutbox.send(consumer.destination, "after the exit")
        [received] = consumer.wait_for(1, timeout=5)
        call = wait_until(lambda: OutboxEvent.objects.filter(status="dead").first())
        assert relay.thread.is_alive()  # the listener lives on
        outbox.notify("still running calls")
        wait_until(lambda: outbox.runs("notify"))
    assert received.message_id == str(message_id)
    assert (call.attempts, call.last_error) == (2, "SystemExit: 3")
    assert len(outbox.runs("exits")) == 2


def test_system_exit_in_the_producers_hook_is_recorded_not_raised_into_the_caller(
    transactional_db, runs
):
    with transaction.atomic():
        outbox.exits(4)  # the hook runs at COMMIT; nothing escapes into the request
    call = OutboxEvent.objects.get()
    assert (call.status, call.attempts, call.last_error) == ("pending", 1, "SystemExit: 4")


def test_calls_recover_from_a_database_restart(relay_thread, producer_dies_after_commit):
    with pgoutbox_settings(**FAST_RETRIES):
        relay_thread(transport=MemoryTransport())
        outbox.create_order("before")
        wait_until(lambda: Order.objects.filter(reference="before").exists())
        with connection.cursor() as cursor:  # every session but this one, as a restart does
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 3  # LISTEN, message and call sessions, Django's
        outbox.create_order("after")
        wait_until(lambda: Order.objects.filter(reference="after").exists(), timeout=10)
        wait_until(lambda: not OutboxEvent.objects.exists())


class _KillingTransport(MemoryTransport):
    """Confirms (or not) each batch, but first kills the relay session that claimed it, as a
    server timeout or an operator would."""

    def __init__(self, *, confirm: bool) -> None:
        super().__init__()
        self.confirm = confirm
        self.batches = 0

    def publish_batch(self, messages: Any) -> PublishOutcome:
        self.batches += 1
        with database.connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'pgoutbox' AND datname = current_database() "
                "AND state LIKE 'idle in transaction%'"
            )
        if self.confirm:
            return super().publish_batch(messages)
        ids = frozenset(m.event_id for m in messages)
        return PublishOutcome(frozenset(), {}, ids, "no receipt in time")


def test_a_batch_whose_transaction_is_lost_after_the_broker_confirmed_is_not_republished(
    relay_thread,
):
    transport = _KillingTransport(confirm=True)
    relay_thread(transport=transport)
    pgoutbox.send("/queue/pgoutbox-killed", "once")
    wait_until(lambda: not OutboxEvent.objects.exists())
    assert len(transport.deliveries) == 1


def test_a_batch_whose_transaction_keeps_being_lost_backs_off_counts_and_dies(relay_thread):
    transport = _KillingTransport(confirm=False)
    with pgoutbox_settings(**FAST_RETRIES, MAX_ATTEMPTS=3):
        relay_thread(transport=transport)
        pgoutbox.send("/queue/pgoutbox-killed", "never confirmed")
        event = wait_until(lambda: OutboxEvent.objects.filter(status="dead").first(), timeout=15)
    assert event.attempts == 3
    assert event.last_error.startswith("batch not committed: DatabaseError")
    assert transport.batches == 3


def test_messages_do_not_wake_the_calls_lane_keep_order_calls_do(relay_thread):
    """Each wake-up of the calls lane is a lease query: messages must not cost one each."""
    transport = MemoryTransport()
    relay = relay_thread(transport=transport, poll_interval=30).relay
    wait_until(lambda: relay.listener is not None)
    time.sleep(0.3)  # past the start-up drains
    drains = 0
    drain = relay.calls.drain

    def counted(*args: Any) -> int:
        nonlocal drains
        drains += 1
        return drain(*args)

    relay.calls.drain = counted  # type: ignore[method-assign]
    for n in range(50):
        pgoutbox.send("/queue/pgoutbox-messages-only", n)
    wait_until(lambda: len(transport.deliveries) == 50)
    assert drains == 0
    outbox.notify_ordered("wakes the calls lane")
    wait_until(lambda: outbox.runs("notify_ordered"), timeout=5)  # the poll is 30 s
    assert drains >= 1
