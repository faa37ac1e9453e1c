"""PgBouncer in transaction mode in front of the producers, the relay connected directly: the
deployment DESIGN.md names (LISTEN and session locks do not work through such a pooler)."""

from __future__ import annotations

import time

import pytest
from django.db import transaction
from django.test import override_settings

import pgoutbox
from pgoutbox.models import OutboxEvent
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox
from tests.support.function_events import pgoutbox_settings, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "bouncer", "direct"]),
    pytest.mark.usefixtures("runs", "pgbouncer"),
]

EVENTS = 20


class Rollback(Exception):
    pass


def test_events_written_through_pgbouncer_are_pushed_by_a_direct_listener(
    relay_thread, stomp_consumer
):
    consumer = stomp_consumer()
    with pgoutbox_settings(DATABASE="direct", POLL_INTERVAL=30.0):
        relay_thread()
        sent = []
        started = time.monotonic()
        for n in range(EVENTS):
            with transaction.atomic(using="bouncer"):
                sent.append(str(pgoutbox.send(consumer.destination, n, using="bouncer")))
        with pytest.raises(Rollback), transaction.atomic(using="bouncer"):
            pgoutbox.send(consumer.destination, "rolled back", using="bouncer")
            raise Rollback
        received = consumer.wait_for(EVENTS, timeout=10)
        elapsed = time.monotonic() - started
    assert [m.message_id for m in consumer.quiet_for(0.3)] == sent  # in order, none extra
    assert len(received) == EVENTS
    assert elapsed < 5.0  # pushed by NOTIFY, not found by the 30 s poll


def test_calls_through_pgbouncer_run_once_and_never_when_rolled_back(
    relay_thread, producer_dies_after_commit
):
    with (
        pgoutbox_settings(DATABASE="direct", PUBLISH_ON_COMMIT_LEASE=0.05),
        override_settings(DATABASE_ROUTERS=["tests.app.routers.OutboxOnBouncer"]),
    ):
        relay_thread(transport=MemoryTransport(), poll_interval=0.1)
        with pytest.raises(Rollback), transaction.atomic(using="bouncer"):
            outbox.notify("rolled back")
            raise Rollback
        with transaction.atomic(using="bouncer"):
            outbox.notify("committed")
            outbox.notify_ordered("ordered through the pooler")
        wait_until(lambda: outbox.runs("notify_ordered") and outbox.runs("notify"))
        wait_until(lambda: not OutboxEvent.objects.exists())
    assert [run.args for run in outbox.runs("notify")] == [("committed",)]


def test_ordered_messages_through_pgbouncer_are_published_in_order(relay_thread, stomp_consumer):
    consumer = stomp_consumer()
    with pgoutbox_settings(DATABASE="direct", POLL_INTERVAL=0.2):
        relay_thread()
        sent = []
        for n in range(EVENTS):
            if n % 2:
                with transaction.atomic(using="bouncer"):
                    sent.append(
                        str(
                            pgoutbox.send(
                                consumer.destination, n, stream="s", ordered=True, using="bouncer"
                            )
                        )
                    )
            else:  # autocommit: each statement is its own pooled transaction
                sent.append(
                    str(
                        pgoutbox.send(
                            consumer.destination, n, stream="s", ordered=True, using="bouncer"
                        )
                    )
                )
        consumer.wait_for(EVENTS, timeout=10)
    assert [m.message_id for m in consumer.quiet_for(0.3)] == sent
