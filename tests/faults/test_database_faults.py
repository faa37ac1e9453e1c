"""PostgreSQL-side faults: the relay's sessions terminated under load, notifications that never
come, and a LISTENing session that stops reading (the NOTIFY queue fills)."""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings

import pgoutbox
from tests.support import database
from tests.support.processes import CONNECTED_LINE

pytestmark = pytest.mark.django_db(transaction=True)

TERMINATIONS = 4
BATCH = 50

SESSIONS = database.LISTENER_SESSIONS


def test_terminated_sessions_reconnect_listen_then_drain(
    relay_process, counting_consumer, ledger, producer_thread, pg, figures
):
    consumer = counting_consumer()
    # A 30 s poll cannot explain any delivery below: only LISTEN and the reconnect drain can.
    listener = relay_process(
        overrides={"POLL_INTERVAL": 30, "RECONNECT_BACKOFF_MAX": 1, "BATCH_SIZE": BATCH}
    )
    listener.wait_connected()
    assert len(database.wait_for_backends(pg, SESSIONS)) == SESSIONS
    load = producer_thread(consumer.destination, total=3_000, per_transaction=10, interval=0.02)

    recoveries = []
    terminated = 0
    for _ in range(TERMINATIONS):
        time.sleep(0.8)
        connects = listener.output().count(CONNECTED_LINE)
        pids = [pid for pid, _ in database.relay_backends(pg)]
        assert len(pids) == SESSIONS, pids
        terminated += database.terminate(pg, pids)
        killed_at = time.monotonic()
        listener.wait_connected(count=connects + 1)  # LISTEN done, claim connection open
        backends = database.wait_for_backends(pg, SESSIONS)
        assert {pid for pid, _ in backends}.isdisjoint(pids) and len(backends) == SESSIONS
        recoveries.append(time.monotonic() - killed_at)
    load.join()
    missing = consumer.wait_for_ids(ledger.ids(), timeout=30)

    # LISTEN is live again: one more event arrives at once, not after the 30 s poll.
    pushed_at = time.monotonic()
    ledger.record([pgoutbox.send(consumer.destination, "after the terminations")])
    missing |= consumer.wait_for_ids(ledger.ids(), timeout=5)
    push_latency = time.monotonic() - pushed_at
    consumer.quiet_for(0.5)
    assert listener.terminate() == 0

    accounting = ledger.account(consumer.snapshot())
    figures.update(
        events=accounting.committed,
        terminations=TERMINATIONS,
        sessions_terminated=terminated,
        lost=len(accounting.lost),
        extra_copies=accounting.duplicate_copies,
        max_reconnect_s=round(max(recoveries), 2),
        push_after_s=round(push_latency, 3),
    )
    assert terminated >= TERMINATIONS  # at least the LISTEN or the claim session each time
    assert not missing and not accounting.lost, str(accounting)
    assert not accounting.unexpected
    assert accounting.duplicate_copies <= TERMINATIONS * BATCH
    assert push_latency < 2.0
    assert "database unavailable" in listener.output()
    assert database.relay_backends(pg) == [], "no session left behind"
    assert database.event_status(pg) == {}


def _delivery_time(consumer, message_ids, *, timeout):
    started = time.monotonic()
    missing = consumer.wait_for_ids([str(m) for m in message_ids], timeout=timeout)
    assert not missing, f"{len(missing)} events not delivered in {timeout}s"
    return time.monotonic() - started


def _notified(probe, stream: str) -> int:
    """Notifications the probe got on the catch-all channel for ``stream`` (its payload)."""
    return sum(1 for n in probe.notifies(timeout=0.1) if n.payload == stream)


def test_missed_notifications_are_covered_by_the_poll(
    relay_thread, counting_consumer, ledger, sql_producer, pg, pg_session, figures
):
    poll = 1.0
    consumer = counting_consumer()
    producer = sql_producer(consumer.destination)
    probe = pg_session()  # listens like the relay, to show what was (not) notified
    probe.execute("LISTEN pgoutbox")

    # 1. Committed while no listener runs: the start-up drain takes them.
    early = producer.insert(20, stream="notify-on")
    relay_thread(poll_interval=poll)
    started_late = _delivery_time(consumer, early, timeout=poll + 2)

    # 2. NOTIFY switched off for one transaction (SET LOCAL pgoutbox.notify = 'off').
    time.sleep(0.2)
    assert _notified(probe, "notify-on") == 1, "the probe hears an ordinary commit"
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL pgoutbox.notify = 'off'")
        quiet = [
            pgoutbox.send(consumer.destination, {"notify": "off"}, stream="set-local-off")
            for _ in range(5)
        ]
    ledger.record(quiet)
    assert _notified(probe, "set-local-off") == 0
    set_local = _delivery_time(consumer, quiet, timeout=poll + 1)

    # 3. NOTIFY switched off for the database (new sessions read it at connect).
    db_name = database.current_db_name()
    pg.execute(f"ALTER DATABASE \"{db_name}\" SET pgoutbox.notify = 'off'")
    try:
        fresh = database.SqlProducer(ledger, consumer.destination)
        try:
            assert fresh.conn.execute("SHOW pgoutbox.notify").fetchone()[0] == "off"
            time.sleep(0.2)
            altered_ids = fresh.insert(5, stream="database-off")
            assert _notified(probe, "database-off") == 0
            altered = _delivery_time(consumer, altered_ids, timeout=poll + 1)
        finally:
            fresh.close()
    finally:
        pg.execute(f'ALTER DATABASE "{db_name}" RESET pgoutbox.notify')

    # 4. The LISTEN session killed, events committed before it is back: reconnect, drain.
    assert len(database.wait_for_backends(pg, SESSIONS)) == SESSIONS
    listen_pid = database.listen_backend(pg)
    assert database.terminate(pg, [listen_pid]) == 1
    during = producer.insert(10)
    reconnected = _delivery_time(consumer, during, timeout=poll + 3)
    backends = database.wait_for_backends(pg, SESSIONS)
    assert listen_pid not in {pid for pid, _ in backends} and len(backends) == SESSIONS

    consumer.quiet_for(0.3)
    accounting = ledger.account(consumer.snapshot())
    figures.update(
        poll_interval_s=poll,
        started_late_s=round(started_late, 2),
        set_local_off_s=round(set_local, 2),
        alter_database_off_s=round(altered, 2),
        listen_killed_s=round(reconnected, 2),
        events=accounting.committed,
        lost=len(accounting.lost),
        extra_copies=accounting.duplicate_copies,
    )
    assert accounting.committed == 40
    assert not accounting.lost and not accounting.duplicates and not accounting.unexpected


def test_a_stuck_listening_session_is_reported_by_the_heartbeat(
    relay_thread, counting_consumer, ledger, pg, pg_session, caplog, figures
):
    consumer = counting_consumer()
    warn_at = 1e-6  # about two of the queue's 8 kB pages
    with override_settings(
        PGOUTBOX={**settings.PGOUTBOX, "HEARTBEAT_INTERVAL": 0.2, "NOTIFY_QUEUE_WARN": warn_at}
    ):
        relay_thread(poll_interval=0.2)
    caplog.set_level(logging.WARNING, logger="pgoutbox")

    # The NOTIFY queue is the cluster's: other sessions may use a little of it too.
    baseline = pg.execute("SELECT pg_notification_queue_usage()").fetchone()[0]
    stuck = pg_session(autocommit=False, application_name="pgoutbox-tests-stuck")
    try:
        stuck.execute("LISTEN pgoutbox")
        stuck.commit()
        stuck.execute("SELECT 1")  # idle in transaction: it never reads a notification again
        caplog.clear()
        # Writers keep committing; each commit queues notifications the stuck session holds.
        writer = database.SqlProducer(ledger, consumer.destination)
        try:
            for n in range(300):
                writer.insert(1, stream=f"stuck-{n}-{uuid.uuid4().hex}{'x' * 120}")
        finally:
            writer.close()
        usage = pg.execute("SELECT pg_notification_queue_usage()").fetchone()[0]
        assert usage > max(warn_at, baseline), (usage, baseline)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _queue_warnings(caplog, above=baseline):
            time.sleep(0.05)
        warnings = _queue_warnings(caplog, above=baseline)
        # The relay's own listener reads on: the writers' events were delivered meanwhile.
        missing = consumer.wait_for_ids(ledger.ids(), timeout=10)
    finally:
        stuck.close()

    figures.update(
        baseline=f"{baseline:.2e}",
        queue_usage=f"{usage:.2e}",
        warn_at=warn_at,
        warnings=len(warnings),
        writers_committed=len(ledger),
    )
    assert warnings, "no heartbeat warning while a listener is stuck"
    assert "a session that LISTENs is not reading" in warnings[0].getMessage()
    assert len(ledger) == 300 and not missing


def _queue_warnings(caplog, *, above: float):
    """Heartbeat warnings reporting a queue usage above ``above``."""
    return [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and getattr(r, "notify_queue_usage", 0.0) > above
    ]
