"""Four listeners and a polling ``events_relay --run-in-loop`` share one outbox: every event
is delivered exactly once in a clean run."""

from __future__ import annotations

import time

import pytest

from tests.support import database

pytestmark = pytest.mark.django_db(transaction=True)

LISTENERS = 4
PRODUCERS = 3
EVENTS_PER_PRODUCER = 3_000


def test_four_listeners_and_a_polling_relay_deliver_each_event_once(
    relay_process, counting_consumer, ledger, producer_thread, pg, figures
):
    consumer = counting_consumer()
    overrides = {"BATCH_SIZE": 50}
    relays = [relay_process("outbox_listen", overrides=overrides) for _ in range(LISTENERS)]
    relays.append(
        relay_process(
            "events_relay", ["--run-in-loop", "--loop-interval", "0.2"], overrides=overrides
        )
    )
    for relay in relays:
        relay.wait_connected()
    expected = database.LISTENER_SESSIONS * LISTENERS + database.POLLER_SESSIONS
    sessions = database.wait_for_backends(pg, expected)
    assert len(sessions) == expected, sessions

    started = time.monotonic()
    producers = [
        producer_thread(
            consumer.destination,
            total=EVENTS_PER_PRODUCER,
            per_transaction=5,
            interval=0.002,
        )
        for _ in range(PRODUCERS)
    ]
    for producer in producers:
        producer.join()
    produced_in = time.monotonic() - started
    missing = consumer.wait_for_ids(ledger.ids(), timeout=60)
    delivered_in = time.monotonic() - started
    consumer.quiet_for(1.0)
    exit_codes = [relay.terminate() for relay in relays]

    accounting = ledger.account(consumer.snapshot())
    figures.update(
        relays=f"{LISTENERS} listeners + events_relay",
        events=accounting.committed,
        produced_s=round(produced_in, 2),
        all_delivered_s=round(delivered_in, 2),
        lost=len(accounting.lost),
        extra_copies=accounting.duplicate_copies,
    )
    assert accounting.committed == PRODUCERS * EVENTS_PER_PRODUCER
    assert not missing and not accounting.lost, str(accounting)
    assert not accounting.duplicates, str(accounting)
    assert not accounting.unexpected
    assert exit_codes == [0] * len(relays)
    assert database.event_status(pg) == {}
