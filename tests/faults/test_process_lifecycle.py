"""The listener as a long-lived process: SIGTERM finishes the batch in flight and exits 0;
100,000 events later it holds no more memory, descriptors, threads or sessions than before."""

from __future__ import annotations

import math
import time

import pytest

from tests.support import database

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = 500


def test_sigterm_mid_batch_finishes_the_batch_and_exits_zero(
    relay_process, counting_consumer, ledger, sql_producer, pg, figures
):
    consumer = counting_consumer()
    producer = sql_producer(consumer.destination)
    for _ in range(10):
        producer.insert(BATCH)
    listener = relay_process(overrides={"BATCH_SIZE": BATCH})
    consumer.wait_for_count(1, timeout=15)
    listener.popen.send_signal(15)  # SIGTERM, while the first messages are arriving
    at_signal = consumer.count()
    exit_code = listener.popen.wait(20)

    rows = pg.execute(
        "SELECT message_id::text, status, attempts, last_error FROM pgoutbox_event"
    ).fetchall()
    left = {row[0] for row in rows}
    # What left the table was confirmed by the broker: wait until the consumer has it all.
    assert not consumer.wait_for_ids(ledger.ids() - left, timeout=15)
    consumer.quiet_for(0.3)
    delivered = {d.message_id for d in consumer.snapshot()}
    figures.update(
        events=len(ledger),
        delivered_at_signal=at_signal,
        delivered_before_exit=len(delivered),
        left_pending=len(left),
        exit_code=exit_code,
    )
    assert exit_code == 0
    assert "SIGTERM received" in listener.output()
    # The batch in flight was finished: whole batches went out, each row of them deleted...
    assert len(delivered) == len(consumer.snapshot()), "no duplicate"
    assert len(delivered) % BATCH == 0 and len(delivered) >= math.ceil(at_signal / BATCH) * BATCH
    assert len(delivered) < len(ledger), "it stopped rather than draining everything"
    # ...and nothing else was touched: every other row is pending, untried, unlocked.
    assert delivered.isdisjoint(left) and delivered | left == ledger.ids()
    assert all(
        status == "pending" and attempts == 0 and error is None
        for _, status, attempts, error in rows
    )

    # A new listener delivers exactly the rest.
    relay_process(overrides={"BATCH_SIZE": BATCH})
    assert not consumer.wait_for_ids(ledger.ids(), timeout=30)
    consumer.quiet_for(0.5)
    accounting = ledger.account(consumer.snapshot())
    assert not accounting.lost and not accounting.duplicates, str(accounting)


TOTAL = 100_000
CHUNK = 1_000
WARM_UP = 10_000


@pytest.mark.timeout(240)
def test_long_running_listener_does_not_leak(
    relay_process, counting_consumer, ledger, sql_producer, pg, figures
):
    consumer = counting_consumer()
    producer = sql_producer(consumer.destination)
    listener = relay_process()
    listener.wait_connected()

    samples = {}
    sessions = set()
    started = time.monotonic()
    while len(ledger) < TOTAL:
        producer.insert(CHUNK)
        # Keep a small backlog so the listener goes through many wake-drain-wait cycles.
        consumer.wait_for_count(len(ledger) - 2 * CHUNK, timeout=30)
        if len(ledger) % WARM_UP == 0:
            samples[len(ledger)] = listener.sample()
            sessions.add(len(database.relay_backends(pg)))
    missing = consumer.wait_for_ids(ledger.ids(), timeout=60)
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # idle: whatever a batch allocates is released
    end = listener.sample()
    sessions.add(len(database.relay_backends(pg)))
    assert listener.terminate() == 0

    accounting = ledger.account(consumer.snapshot())
    base = samples[WARM_UP]
    figures.update(
        events=accounting.committed,
        seconds=round(elapsed, 1),
        events_per_s=round(accounting.committed / elapsed),
        lost=len(accounting.lost),
        extra_copies=accounting.duplicate_copies,
        rss_mb=" ".join(f"{s.rss_bytes / 2**20:.1f}" for s in [*samples.values(), end]),
        fds=f"{base.fds}->{end.fds}",
        threads=f"{base.threads}->{end.threads}",
        pg_sessions=sorted(sessions),
    )
    assert not missing and not accounting.lost and not accounting.unexpected, str(accounting)
    assert not accounting.duplicates
    assert sessions == {database.LISTENER_SESSIONS}, "LISTEN, messages and calls, never more"
    assert end.fds == base.fds and end.threads == base.threads
    # Memory after warm-up: a leak of even 100 bytes per event would add ~9 MB.
    assert end.rss_bytes - base.rss_bytes < 8 * 2**20, figures["rss_mb"]
