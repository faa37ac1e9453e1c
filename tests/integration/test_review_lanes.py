"""Ways the two-lane relay was broken on this machine's PostgreSQL and RabbitMQ: user code
(functions and signal receivers) that misbehaves, a database restart under a call, and option
values the command line accepts.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

import pgoutbox
from pgoutbox import save_to_outbox, save_to_outbox_stream, signals
from pgoutbox.models import OutboxEvent
from pgoutbox.runner import relay_options
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox
from tests.support.function_events import pgoutbox_settings, wait_until

pytestmark = pytest.mark.usefixtures("runs")

FAST_RETRIES = {
    "RETRY_BACKOFF_BASE": 0.05,
    "RETRY_BACKOFF_MAX": 0.1,
    "PUBLISH_ON_COMMIT_LEASE": 0.05,
}


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("this exception cannot be printed")


@save_to_outbox
def raises_unprintable(token: str) -> None:
    outbox.record("raises_unprintable", (token,), {})
    raise _Unprintable()


def _terminate_every_other_session() -> int:
    with connection.cursor() as cursor:  # as a database restart or failover does
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def test_a_call_whose_exception_cannot_be_printed_is_that_calls_failure(
    relay_thread, producer_dies_after_commit
):
    """str() of the exception raised inside the failure handler: the call was neither recorded
    nor dead, every call leased with it waited out CALL_LEASE, and it came back after each
    lease with one attempt more, past MAX_ATTEMPTS, for ever."""
    with pgoutbox_settings(**FAST_RETRIES, MAX_ATTEMPTS=2, CALL_LEASE=30.0):
        relay = relay_thread(transport=MemoryTransport())
        raises_unprintable("bad")
        outbox.notify("leased with it")
        time.sleep(0.1)  # both leases of the publish-on-commit hook run out
        relay.relay.calls.wake.set()
        wait_until(lambda: outbox.runs("notify"), timeout=5)
        bad = wait_until(
            lambda: (
                OutboxEvent.objects.filter(function__endswith="raises_unprintable")
                .exclude(status="pending")
                .first()
            ),
            timeout=10,
        )
    assert (bad.status, bad.attempts) == ("dead", 2)
    assert "_Unprintable" in bad.last_error


@pytest.fixture
def exiting_receiver() -> Iterator[None]:
    def receiver(**kwargs: Any) -> None:
        raise SystemExit("a receiver exits")

    signals.event_published_by_events_relay.connect(receiver, weak=False)
    yield
    signals.event_published_by_events_relay.disconnect(receiver)


def test_a_signal_receiver_raising_system_exit_does_not_stop_the_calls_lane(
    relay_thread, producer_dies_after_commit, exiting_receiver
):
    """send_robust catches Exception only: a receiver's SystemExit ended the calls thread in
    silence; messages went on, calls were never run again."""
    with pgoutbox_settings(**FAST_RETRIES):
        relay = relay_thread(transport=MemoryTransport())
        outbox.notify("first")
        time.sleep(0.1)
        relay.relay.calls.wake.set()
        wait_until(lambda: outbox.runs("notify"), timeout=5)
        time.sleep(0.2)
        outbox.notify("second")
        time.sleep(0.1)
        relay.relay.calls.wake.set()
        wait_until(lambda: len(outbox.runs("notify")) == 2, timeout=5)
        wait_until(lambda: not OutboxEvent.objects.exists())


def test_a_call_lost_in_a_database_restart_comes_back_after_its_backoff_not_its_lease(
    relay_thread, producer_dies_after_commit
):
    """The failure of a call whose session died is kept for the next connection when the
    lane's own session died too (as in a restart): it must not wait out CALL_LEASE."""
    with pgoutbox_settings(**FAST_RETRIES, CALL_LEASE=30.0):
        relay = relay_thread(transport=MemoryTransport())
        outbox.sleep_for(1.0)
        time.sleep(0.1)
        relay.relay.calls.wake.set()
        wait_until(lambda: outbox.runs("sleep_for"), timeout=5)
        assert _terminate_every_other_session() >= 3
        wait_until(lambda: len(outbox.runs("sleep_for")) == 2, timeout=8)
        wait_until(lambda: not OutboxEvent.objects.exists(), timeout=5)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("poll_interval", float("inf")),
        ("poll_interval", 1e300),
        ("poll_interval", float("nan")),
        ("batch_size", float("inf")),  # int(inf) raised OverflowError, not a CommandError
        ("batch_size", float("nan")),
    ],
)
def test_relay_options_refuse_values_that_cannot_be_waited_on(option: str, value: float) -> None:
    """poll_interval=inf passed validation; the calls lane's wake.wait(inf) raised
    OverflowError outside its retry loop and the calls thread died (events_relay's loop
    reconnected for ever)."""
    with pytest.raises(CommandError, match=f"--{option.replace('_', '-')}"):
        relay_options({option: value})


def test_call_command_refuses_an_infinite_loop_interval(transactional_db) -> None:
    """Before: accepted; every stop.wait(inf) raised OverflowError and the relay logged
    "relay error, restarting" twice a second for ever."""
    with pytest.raises(CommandError, match="--loop-interval"):
        call_command("events_relay", run_in_loop=True, loop_interval=float("inf"))


def test_settings_refuse_an_infinite_poll_interval() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from pgoutbox.conf import get_settings

    with (
        pgoutbox_settings(POLL_INTERVAL=float("inf")),
        pytest.raises(ImproperlyConfigured, match="POLL_INTERVAL"),
    ):
        get_settings()


@save_to_outbox
def closes_its_connection(token: str) -> None:
    outbox.record("closes_its_connection", (token,), {})
    connection.close()


@save_to_outbox
def swallows_a_database_error(token: str) -> None:
    from django.db import DatabaseError

    outbox.record("swallows_a_database_error", (token,), {})
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
    except DatabaseError:
        pass  # the transaction is aborted; the function returns as if all went well


@save_to_outbox
def raises_keyboard_interrupt(token: str) -> None:
    outbox.record("raises_keyboard_interrupt", (token,), {})
    raise KeyboardInterrupt


@save_to_outbox
def raises_generator_exit(token: str) -> None:
    outbox.record("raises_generator_exit", (token,), {})
    raise GeneratorExit


@save_to_outbox
def writes_on_another_alias(token: str) -> None:
    from django.db import transaction

    from tests.app.models import Order

    outbox.record("writes_on_another_alias", (token,), {})
    with transaction.atomic(using="direct"):
        Order.objects.using("direct").create(reference=f"direct-{token}")
    raise RuntimeError("after a write on another alias")


@pytest.mark.parametrize(
    "function",
    [
        closes_its_connection,
        swallows_a_database_error,
        raises_keyboard_interrupt,
        raises_generator_exit,
        writes_on_another_alias,
    ],
    ids=lambda f: f.__name__,
)
def test_misbehaving_functions_are_their_calls_failures(
    relay_thread, producer_dies_after_commit, function
):
    """Each goes dead after MAX_ATTEMPTS with its cause; the relay runs the next call."""
    name = function.__name__
    with pgoutbox_settings(**FAST_RETRIES, MAX_ATTEMPTS=2, POLL_INTERVAL=0.1):
        relay = relay_thread(transport=MemoryTransport())
        function("x")
        row = wait_until(lambda: OutboxEvent.objects.filter(status="dead").first(), timeout=10)
        assert relay.thread.is_alive()
        outbox.notify("next")
        wait_until(lambda: outbox.runs("notify"), timeout=5)
    assert row.attempts == 2 and row.last_error
    assert len(outbox.runs(name)) == 2


_SPANS: list[tuple[int, float, float]] = []
_SPANS_LOCK = threading.Lock()


@save_to_outbox_stream("review-ordered", overwrite_strategy_with="keep-order")
def ordered_step(n: int, seconds: float) -> None:
    started = time.monotonic()
    time.sleep(seconds)
    with _SPANS_LOCK:
        _SPANS.append((n, started, time.monotonic()))


def test_three_relays_run_a_keep_order_stream_once_each_in_order_never_two_at_once(
    relay_thread, producer_dies_after_commit
):
    """Two listeners and a polling relay on one keep-order stream, with a lease shorter than
    the calls: every call runs once, in id order, and no two overlap."""
    _SPANS.clear()
    with pgoutbox_settings(**FAST_RETRIES, CALL_LEASE=0.1, BATCH_SIZE=5, POLL_INTERVAL=0.05):
        relays = [relay_thread(transport=MemoryTransport()) for _ in range(2)]
        relays.append(relay_thread(transport=MemoryTransport(), listen=False))
        for n in range(30):
            ordered_step(n, 0.15 if n % 5 == 0 else 0.01)  # some outlive their lease
        wait_until(lambda: not OutboxEvent.objects.exists(), timeout=30)
    with _SPANS_LOCK:
        spans = sorted(_SPANS, key=lambda span: span[1])
    assert [n for n, _, _ in spans] == list(range(30))
    overlaps = [(a[0], b[0]) for a, b in itertools.pairwise(spans) if b[1] < a[2]]
    assert overlaps == []


def test_a_keep_order_call_committed_while_the_listener_drains_is_not_left_for_the_drain(
    adaptive, stomp_consumer, relay_thread
):
    """While the busy lock is held, producers skip NOTIFY; the message lane woke the calls lane
    only when it could not give the lock up, so a call committed during a long drain waited
    for the calls lane's poll."""
    from django.db import transaction

    consumer = stomp_consumer()
    relay_thread(poll_interval=60)
    consumer.quiet_for(0.3)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL pgoutbox.notify = 'off'")
        for n in range(6000):
            pgoutbox.send(consumer.destination, {"backlog": n})
    pgoutbox.send(consumer.destination, "wake up")
    consumer.wait_for(700, timeout=30)  # the listener is draining, holding its busy lock
    assert OutboxEvent.objects.filter(kind="message").count() > 1000  # still draining
    committed = time.monotonic()
    outbox.notify_ordered("while busy")
    run = wait_until(lambda: outbox.runs("notify_ordered"), timeout=70)[0]
    # Before: it ran at the calls lane's next poll (POLL_INTERVAL, 60 s here), long after the
    # drain was over.
    assert run.at - committed < 1.0


def test_a_very_long_broker_wait_does_not_keep_the_relay_from_connecting(transactional_db):
    """idle_in_transaction_session_timeout is an int of milliseconds: STOMP_RECEIPT_TIMEOUT =
    3e6 made every connect fail, logged as "database unavailable, reconnecting" for ever."""
    from pgoutbox.runner import build_relay

    with pgoutbox_settings(STOMP_RECEIPT_TIMEOUT=3e6):
        relay = build_relay(listen=True, transport=MemoryTransport())
        try:
            relay.open()
            assert relay.messages.store is not None
            timeout = relay.messages.store.conn.execute(
                "SELECT current_setting('idle_in_transaction_session_timeout')"
            ).fetchone()
            assert timeout is not None and timeout[0] != "0"
        finally:
            relay.close()


@pytest.mark.parametrize(
    ("function", "args", "ordered"),
    [
        ("tests.app.outbox.notify", '{"args": 1, "kwargs": {}}', False),
        ("tests.app.outbox.notify", '"not an object"', False),
        ("tests.app.outbox.notify", "null", False),
        ("tests.app.outbox.create_order", '{"args": ["r"], "kwargs": {"no such": 1}}', False),
        ("tests.app.outbox.create_order", '{"args": [], "kwargs": {}}', False),
        # Not registered here: handed back, pending for a relay that has it (never imported).
        ("os.system", '{"args": ["true"], "kwargs": {}}', False),
        (None, '{"args": [], "kwargs": {}}', False),
        ("tests.app.outbox.notify_ordered", '{"args": [1, 2, 3], "kwargs": {}}', True),
    ],
)
def test_hand_made_call_rows_that_cannot_run_end_dead_with_a_reason(
    relay_thread, function, args, ordered
):
    """A producer that is not pgoutbox: each bad row ends dead with its reason (or pending with
    its reason: a keep-order row under the default 'block' policy, a function this relay does
    not register), and the relay goes on to the next call."""
    waits = ordered or function == "os.system"
    with pgoutbox_settings(**FAST_RETRIES, MAX_ATTEMPTS=2, POLL_INTERVAL=0.1):
        relay = relay_thread(transport=MemoryTransport())
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO pgoutbox_event (stream, kind, function, args, ordered) "
                "VALUES (%s, 'call', %s, %s::jsonb, %s)",
                ["ordered" if ordered else "", function, args, ordered],
            )
        settled = OutboxEvent.objects.filter(last_error__isnull=False)
        if not waits:
            settled = settled.exclude(status="pending")
        row = wait_until(settled.first, timeout=10)
        assert relay.thread.is_alive()
        outbox.notify("next")
        wait_until(lambda: outbox.runs("notify"), timeout=5)
    assert row.status == ("pending" if waits else "dead")
    assert outbox.runs("notify_ordered") == []


@save_to_outbox
def sleeps_in_the_database(seconds: float) -> None:
    with connection.cursor() as cursor:
        # The session this run is in, for the test to kill: searching pg_stat_activity for a
        # pg_sleep() finds those of the other test runs on this server too.
        cursor.execute("SELECT pg_backend_pid()")
        outbox.record("sleeps_in_the_database: session", (cursor.fetchone()[0],), {})
        outbox.record("sleeps_in_the_database", (seconds,), {})
        cursor.execute("SELECT pg_sleep(%s)", [seconds])


def _backend_of(relay: Any, session: str) -> int:
    if session == "call":  # the Django session the call runs in
        [run] = outbox.runs("sleeps_in_the_database: session")
        return int(run.args[0])
    owner = {
        "listen": relay.listener,
        "messages": relay.messages.store,
        "calls": relay.calls.store,
    }[session]
    return int(owner.conn.info.backend_pid)


@pytest.mark.parametrize("session", ["listen", "messages", "calls", "call"])
def test_killing_any_one_session_during_a_call_loses_nothing_and_stalls_nothing(
    relay_thread, stomp_consumer, producer_dies_after_commit, session
):
    consumer = stomp_consumer()
    with pgoutbox_settings(**FAST_RETRIES, POLL_INTERVAL=0.2, CALL_LEASE=30.0):
        relay = relay_thread()
        sleeps_in_the_database(1.0)
        wait_until(lambda: outbox.runs("sleeps_in_the_database"), timeout=5)
        time.sleep(0.2)
        pid = _backend_of(relay.relay, session)
        with connection.cursor() as cursor:  # a session of this test's database, and only it
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid = %s AND datname = current_database()",
                [pid],
            )
            assert cursor.fetchall() == [(True,)]
        message_id = pgoutbox.send(consumer.destination, "after the kill")
        [received] = consumer.wait_for(1, timeout=10)
        # The call ends (run again if its own session was the one killed), well before its
        # 30 s lease.
        wait_until(lambda: not OutboxEvent.objects.exists(), timeout=10)
    assert received.message_id == str(message_id)
    assert len(outbox.runs("sleeps_in_the_database")) == (2 if session == "call" else 1)
