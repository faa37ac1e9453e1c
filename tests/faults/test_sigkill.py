"""A listener SIGKILLed at random points of its batches and restarted each time: no event is
lost, and the only duplicates are events of the batch in flight at a kill. On every transport;
on JetStream not even those: the stream drops republished message ids."""

from __future__ import annotations

import bisect
import os
import random
import signal
import time
from collections import defaultdict

import pytest

from tests.support import database, kill_points

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = 5_000  # at least; the load goes on until the last kill, however long the kills take
KILLS = 20
BATCH = 25
BACKLOG = 1_000  # committed before the first start, so the first kills land in full batches


def test_sigkill_at_random_points_loses_nothing(
    relay_process, transport_setup, ledger, sql_producer, producer_thread, pg, figures
):
    seed = int(os.environ.get("PGOUTBOX_FAULT_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    consumer = transport_setup.sink()
    overrides = {"BATCH_SIZE": BATCH, "POLL_INTERVAL": 0.5, **transport_setup.settings}
    sql_producer(consumer.destination).insert(BACKLOG)
    # Load until the last kill, so every restarted listener finds work (a slow machine takes
    # longer to start 20 processes than a fixed load lasts).
    load = producer_thread(consumer.destination, total=10**9, per_transaction=10, interval=0.02)

    kill_times: list[float] = []
    delivered_at_kill: list[int] = []
    for _ in range(KILLS):
        before = consumer.count()
        listener = relay_process("outbox_listen", overrides=overrides)
        # Kill while it works: after its first delivery, at a random point of what follows.
        assert consumer.wait_for_count(before + 1, timeout=15) > before, listener.output()[-2000:]
        time.sleep(rng.uniform(0.0, 0.15))
        listener.kill()
        kill_times.append(time.monotonic())
        delivered_at_kill.append(consumer.count())

    load.stop()
    if len(ledger) < EVENTS:
        sql_producer(consumer.destination).insert(EVENTS - len(ledger))
    survivor = relay_process("outbox_listen", overrides=overrides)
    recover_start = time.monotonic()
    missing = consumer.wait_for_ids(ledger.ids(), timeout=60)
    recovered_in = time.monotonic() - recover_start
    consumer.quiet_for(1.0)  # late duplicates, if any, arrive too
    deliveries = consumer.snapshot()
    assert survivor.terminate() == 0

    accounting = ledger.account(deliveries)
    # A duplicate's first copy came from a listener that was killed before it could delete the
    # row; every later copy is blamed on the last kill before it arrived. A kill may only
    # duplicate the batch it interrupted, and no copy may come before the first kill.
    copies: dict[str, list[float]] = defaultdict(list)
    for delivery in deliveries:
        copies[delivery.message_id].append(delivery.at)
    blamed: dict[int, set[str]] = defaultdict(set)
    for message_id in accounting.duplicates:
        first, *later = sorted(copies[message_id])
        for at in later:
            kill = bisect.bisect(kill_times, at) - 1
            blamed[kill].add(message_id)
            assert kill < 0 or first < kill_times[kill] + 1.0, (
                "first copy is not from the killed run"
            )

    figures.update(
        transport=transport_setup.name,
        seed=seed,
        events=accounting.committed,
        kills=len(kill_times),
        batch=BATCH,
        lost=len(accounting.lost),
        duplicated_ids=len(accounting.duplicates),
        extra_copies=accounting.duplicate_copies,
        kills_that_duplicated=len(blamed),
        max_duplicates_per_kill=max((len(ids) for ids in blamed.values()), default=0),
        final_recovery_s=round(recovered_in, 2),
    )
    assert len(kill_times) == KILLS
    assert len(set(delivered_at_kill)) == KILLS, "every run delivered something before its kill"
    assert not missing and not accounting.lost, (
        f"lost after {KILLS} kills: {accounting} (seed {seed})"
    )
    assert not accounting.unexpected
    assert -1 not in blamed, "a duplicate arrived before any kill"
    assert all(len(ids) <= BATCH for ids in blamed.values()), {k: len(v) for k, v in blamed.items()}
    assert accounting.duplicate_copies <= KILLS * BATCH
    assert database.event_status(pg) == {}, "every event was deleted once delivered"
    if transport_setup.name == "jetstream":
        # Republished copies carry the same Nats-Msg-Id: the stream stored each event once.
        assert accounting.duplicate_copies == 0, str(accounting)
        assert consumer.stored() == accounting.committed


KILL_AT_BATCH = 3


@pytest.mark.parametrize(
    ("point", "duplicated_batches"), [("before-publish", 0), ("after-publish", 1)]
)
def test_sigkill_at_a_chosen_point_duplicates_at_most_that_batch(
    point, duplicated_batches, relay_process, counting_consumer, ledger, sql_producer, pg, figures
):
    consumer = counting_consumer()
    sql_producer(consumer.destination).insert(20 * BATCH)
    doomed = relay_process(
        overrides={"BATCH_SIZE": BATCH, "TRANSPORT": kill_points.TRANSPORT_PATH},
        **{kill_points.KILL_POINT_ENV: f"{point}:{KILL_AT_BATCH}"},
    )
    assert doomed.wait() == -signal.SIGKILL
    sent_by_doomed = (
        KILL_AT_BATCH * BATCH if point == "after-publish" else (KILL_AT_BATCH - 1) * BATCH
    )
    assert consumer.wait_for_count(sent_by_doomed, timeout=10) == sent_by_doomed
    consumer.quiet_for(0.3)
    first_run = consumer.snapshot()
    in_flight = {d.message_id for d in first_run[(KILL_AT_BATCH - 1) * BATCH :]}
    # Batches before the kill were deleted; the batch in flight is back to pending, untouched.
    assert database.event_status(pg) == {"pending": (20 - KILL_AT_BATCH + 1) * BATCH}

    survivor = relay_process(overrides={"BATCH_SIZE": BATCH})
    assert not consumer.wait_for_ids(ledger.ids(), timeout=30)
    consumer.quiet_for(0.5)
    assert survivor.terminate() == 0
    accounting = ledger.account(consumer.snapshot())
    figures.update(
        kill_point=point,
        events=accounting.committed,
        lost=len(accounting.lost),
        extra_copies=accounting.duplicate_copies,
    )
    assert not accounting.lost and not accounting.unexpected
    assert accounting.duplicate_copies == duplicated_batches * BATCH
    assert set(accounting.duplicates) == (in_flight if duplicated_batches else set())
