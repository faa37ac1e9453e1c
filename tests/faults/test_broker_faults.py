"""RabbitMQ unreachable under load, and a destination the broker refuses (poison event)."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

import pgoutbox
from pgoutbox.models import OutboxEvent
from tests.support import database
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)

# The issue asks for 30 s, and the suite budget allows it; PGOUTBOX_FAULT_BROKER_OUTAGE shortens it.
OUTAGE_SECONDS = float(os.environ.get("PGOUTBOX_FAULT_BROKER_OUTAGE", "30"))


def _pending_stats(pg):
    return pg.execute(
        "SELECT count(*) FILTER (WHERE status = 'pending'),"
        "       count(*) FILTER (WHERE status = 'dead'),"
        "       coalesce(max(attempts), 0),"
        "       count(*) FILTER (WHERE last_error IS NOT NULL),"
        "       min(last_error)"
        " FROM pgoutbox_event"
    ).fetchone()


# The other transports' outages are shorter: the scenario is the same, the suite stays short.
SHORT_OUTAGE_SECONDS = min(OUTAGE_SECONDS, 8.0)


def test_broker_outage_events_wait_then_all_arrive(
    relay_process, transport_setup, ledger, producer_thread, pg, figures
):
    outage = OUTAGE_SECONDS if transport_setup.name == "stomp" else SHORT_OUTAGE_SECONDS
    proxy = TcpProxy(transport_setup.address)
    try:
        consumer = transport_setup.sink()  # straight to the broker: only the relay's path is cut
        max_attempts = 3
        listener = relay_process(
            overrides={
                **transport_setup.settings,
                **transport_setup.url(("127.0.0.1", proxy.port)),
                "RECONNECT_BACKOFF_MAX": 1,
                "STOMP_CONNECT_TIMEOUT": 2,
                "STOMP_RECEIPT_TIMEOUT": 2,
                "MAX_ATTEMPTS": max_attempts,
                "BATCH_SIZE": 100,
            }
        )
        listener.wait_connected()
        load = producer_thread(consumer.destination, total=10**9, per_transaction=10, interval=0.05)
        consumer.wait_for_count(200, timeout=15)
        before = listener.sample()

        proxy.cut()
        cut_at = time.monotonic()
        delivered_at_cut = consumer.count()
        samples = []
        while time.monotonic() - cut_at < outage:
            time.sleep(0.5)
            samples.append(listener.sample())
        pending, dead, max_attempts_seen, with_error, an_error = _pending_stats(pg)
        delivered_during = consumer.count() - delivered_at_cut
        proxy.restore()
        restored_at = time.monotonic()

        committed_during_outage = ledger.ids()
        missing = consumer.wait_for_ids(committed_during_outage, timeout=30)
        recovered_in = time.monotonic() - restored_at
        load.stop()
        missing |= consumer.wait_for_ids(ledger.ids(), timeout=30)
        left = database.event_status(pg)
        consumer.quiet_for(0.5)
        after = listener.sample()
        assert listener.terminate() == 0
    finally:
        proxy.close()

    accounting = ledger.account(consumer.snapshot())
    figures.update(
        transport=transport_setup.name,
        outage_s=outage,
        events=accounting.committed,
        pending_at_end_of_outage=pending,
        max_attempts_seen=max_attempts_seen,
        dead=dead,
        lost=len(accounting.lost),
        extra_copies=accounting.duplicate_copies,
        recovered_s=round(recovered_in, 2),
        rss_mb_before=round(before.rss_bytes / 2**20, 1),
        rss_mb_peak=round(max(s.rss_bytes for s in [*samples, after]) / 2**20, 1),
        threads=f"{before.threads}->{max(s.threads for s in samples)}->{after.threads}",
        fds=f"{before.fds}->{max(s.fds for s in samples)}->{after.fds}",
    )
    # During the outage: events waited, failures were recorded, none was dead-lettered
    # although the retried batch went past MAX_ATTEMPTS (a broker outage is not the event's
    # fault), and a consumer on the broker saw nothing new.
    assert delivered_during <= 100, "at most the batch confirmed as the cut happened"
    assert pending > 0 and with_error > 0, (pending, with_error)
    assert any(word in an_error for word in ("broker", "STOMP", "NATS")), an_error
    assert max_attempts_seen > max_attempts
    assert dead == 0
    # After it: everything arrived, nothing lost; only an interrupted batch may repeat.
    assert not missing and not accounting.lost, f"{accounting}; rows left: {left}"
    assert not accounting.unexpected
    # Only the batch in flight at the cut may repeat; the log says what else interrupted one.
    warnings = [line for line in listener.output().splitlines() if "unavailable" in line]
    assert accounting.duplicate_copies <= 100, (str(accounting), warnings[-10:])
    assert database.event_status(pg) == {}
    # Waiting out the outage costs no memory, threads or descriptors that stay.
    assert max(s.rss_bytes for s in [*samples, after]) - before.rss_bytes < 20 * 2**20
    assert after.threads <= before.threads + 2 and after.fds <= before.fds + 4
    assert "broker unavailable" in listener.output()


def _relay_settings(**overrides):
    return override_settings(PGOUTBOX={**settings.PGOUTBOX, **overrides})


def test_poison_destination_is_dead_lettered_and_the_rest_delivered(
    relay_thread, counting_consumer, ledger, pg, figures
):
    consumer = counting_consumer()
    missing_exchange = f"pgoutbox-missing-{uuid.uuid4().hex[:12]}"
    poison_destination = f"/exchange/{missing_exchange}/x"
    max_attempts = 3
    with _relay_settings(
        MAX_ATTEMPTS=max_attempts,
        RETRY_BACKOFF_BASE=0.05,
        RETRY_BACKOFF_MAX=0.2,
        RECONNECT_BACKOFF_MAX=0.5,
        POLL_INTERVAL=0.5,
    ):
        relay_thread(batch_size=20)
        with transaction.atomic():
            good = [pgoutbox.send(consumer.destination, {"n": n}) for n in range(30)]
            poison_id = pgoutbox.send(poison_destination, {"poison": True})
            good += [pgoutbox.send(consumer.destination, {"n": n}) for n in range(30, 60)]
        ledger.record(good)

        started = time.monotonic()
        missing = consumer.wait_for_ids(ledger.ids(), timeout=20)
        poison = _wait_for_status(poison_id, "dead", timeout=20)
        dead_after = time.monotonic() - started
        assert not missing, f"{len(missing)} good events not delivered"
        assert poison.attempts == max_attempts
        assert f"no exchange '{missing_exchange}'" in poison.last_error, poison.last_error
        assert OutboxEvent.objects.count() == 1, "only the poison event is left"

        # Requeued as it is: retried, refused again, dead again after MAX_ATTEMPTS more tries.
        requeue = (
            "UPDATE pgoutbox_event SET status = 'pending', available_at = now(), attempts = 0"
            " WHERE message_id = %s"
        )
        pg.execute(requeue, (poison_id,))
        poison_again = _wait_for_status(poison_id, "dead", timeout=20)
        assert poison_again.attempts == max_attempts

        # Requeued with a destination that exists: delivered under its original message id.
        pg.execute(
            "UPDATE pgoutbox_event SET destination = %s WHERE message_id = %s",
            (consumer.destination, poison_id),
        )
        pg.execute(requeue, (poison_id,))
        ledger.record([poison_id])
        missing = consumer.wait_for_ids([str(poison_id)], timeout=10)
        consumer.quiet_for(0.5)

    accounting = ledger.account(consumer.snapshot())
    figures.update(
        events=accounting.committed,
        poison_attempts=poison.attempts,
        dead_after_s=round(dead_after, 2),
        lost=len(accounting.lost),
        extra_copies=accounting.duplicate_copies,
    )
    assert not missing and not accounting.lost and not accounting.unexpected, str(accounting)
    assert accounting.duplicate_copies <= 20
    assert not OutboxEvent.objects.exists()


def _wait_for_status(message_id, status, *, timeout):
    deadline = time.monotonic() + timeout
    while True:
        event = OutboxEvent.objects.get(message_id=message_id)
        if event.status == status or time.monotonic() > deadline:
            assert event.status == status, (event.status, event.attempts, event.last_error)
            return event
        time.sleep(0.05)
