"""keep-order streams (``save_to_outbox_stream(..., "keep-order")``): run by the relay only,
strictly in commit order, one relay per stream, and a poison head handled per policy."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import override_settings

from pgoutbox import db
from pgoutbox.conf import get_settings
from pgoutbox.errors import KeepOrderConflict
from pgoutbox.models import OutboxEvent
from pgoutbox.relay.store import CallStore
from pgoutbox.sql import query
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox
from tests.support.function_events import pgoutbox_settings, run_producers, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "direct"]),
    pytest.mark.usefixtures("runs"),
]


def test_the_producer_never_runs_a_keep_order_call(relay_thread):
    with transaction.atomic():
        outbox.notify_ordered("a")
    row = OutboxEvent.objects.get()
    assert (row.ordered, row.stream, row.kind) == (True, "ordered", "call")
    time.sleep(0.3)
    assert outbox.runs() == []

    relay_thread(transport=MemoryTransport())
    [run] = wait_until(outbox.runs)
    assert run.args == ("a",) and run.thread != "MainThread"
    wait_until(lambda: not OutboxEvent.objects.exists())


def test_global_keep_order_strategy_applies_to_save_to_outbox():
    with pgoutbox_settings(PUBLISH_STRATEGY="keep-order"), transaction.atomic():
        outbox.notify("b")
    assert OutboxEvent.objects.get().ordered
    assert outbox.runs() == []


def test_events_of_4_concurrent_producers_run_in_commit_order_by_2_relays(relay_thread):
    relay_thread(transport=MemoryTransport(), batch_size=7)
    relay_thread(transport=MemoryTransport(), batch_size=7)
    rank: dict[str, int] = {}
    counter = itertools.count()
    rank_lock = threading.Lock()

    def produce(producer: int) -> None:
        for seq in range(50):
            token = f"{producer}-{seq}"
            with transaction.atomic():
                outbox.notify_ordered(token)
                # The stream's producer lock is held from the insert to the commit, so the
                # order of this step is the commit order.
                with rank_lock:
                    rank[token] = next(counter)

    run_producers(produce, 4)
    wait_until(lambda: len(outbox.runs()) >= 200, timeout=60)
    time.sleep(0.3)
    run_tokens = [r.args[0] for r in outbox.runs()]
    assert len(run_tokens) == 200 and set(run_tokens) == set(rank)  # each once
    assert [rank[t] for t in run_tokens] == list(range(200))  # commit order
    wait_until(lambda: not OutboxEvent.objects.exists())


def test_a_poison_head_blocks_its_stream_but_not_another(relay_thread):
    with pgoutbox_settings(MAX_ATTEMPTS=2, RETRY_BACKOFF_BASE=0.05, RETRY_BACKOFF_MAX=0.1):
        relay = relay_thread(transport=MemoryTransport(), poll_interval=0.05)
        with transaction.atomic():
            outbox.poisoned_stream(1, fail=True)
            outbox.poisoned_stream(2)
            outbox.notify_ordered_b("other stream")
            outbox.notify("unordered")
        wait_until(lambda: outbox.runs("notify_ordered_b") and outbox.runs("notify"))
        wait_until(lambda: len(outbox.runs("poisoned_stream")) >= 5, timeout=10)
        relay.stop()  # at rest: rows leased with the head are handed back after each failure
    assert {r.args for r in outbox.runs("poisoned_stream")} == {(1,)}  # 2 waits behind 1
    head, behind = OutboxEvent.objects.filter(stream="poisoned").order_by("id")
    assert head.status == "pending" and head.attempts >= 4  # past MAX_ATTEMPTS, never dead
    assert head.last_error == "RuntimeError: poison 1"
    assert (behind.status, behind.attempts) == ("pending", 0)


def test_dead_letter_and_continue_moves_on_after_max_attempts(relay_thread, signal_log):
    with pgoutbox_settings(
        MAX_ATTEMPTS=3,
        RETRY_BACKOFF_BASE=0.05,
        RETRY_BACKOFF_MAX=0.1,
        KEEP_ORDER_POISON_POLICY="dead-letter-and-continue",
    ):
        relay_thread(transport=MemoryTransport(), poll_interval=0.05)
        with transaction.atomic():
            outbox.poisoned_stream(1, fail=True)
            outbox.poisoned_stream(2)
            outbox.poisoned_stream(3)
        wait_until(lambda: len(outbox.runs("poisoned_stream")) == 5)
    assert [r.args[0] for r in outbox.runs("poisoned_stream")] == [1, 1, 1, 2, 3]
    wait_until(lambda: OutboxEvent.objects.filter(status="pending").count() == 0)
    dead = OutboxEvent.objects.get()
    assert (dead.status, dead.attempts) == ("dead", 3)
    assert signal_log.names().count("event_failed_to_publish_by_events_relay") == 2
    assert signal_log.names().count("event_permanently_failed_by_events_relay") == 1
    assert signal_log.names().count("event_published_by_events_relay") == 2


def test_a_stream_held_by_one_relay_is_left_alone_by_another(relay_thread):
    with transaction.atomic():
        outbox.notify_ordered("x")
    with connection.cursor() as cursor, transaction.atomic():
        # Play a relay holding the stream: the running relay must not touch it meanwhile.
        cursor.execute("SELECT pg_advisory_xact_lock(1885831026, hashtext('ordered'))")
        relay_thread(transport=MemoryTransport(), poll_interval=0.05)
        time.sleep(0.5)
        assert outbox.runs() == []
    wait_until(outbox.runs)


def _buffers(plan: dict[str, Any]) -> int:
    """Shared buffers a plan node and its children touched (hit or read)."""
    return int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))


def test_finding_due_streams_never_reads_the_rows_behind_a_blocked_head():
    """Issue: with 200,000 rows behind a poison head a claim took ~130 ms; finding the streams
    read every blocked row. Buffers, not seconds: the figure does not depend on the machine."""
    blocked = 50_000
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO pgoutbox_event (stream, kind, function, args, ordered, available_at) "
            "SELECT 'blocked', 'call', 'tests.app.outbox.notify_ordered', "
            '       \'{"args": [], "kwargs": {}}\', true, '
            "       CASE WHEN g = 1 THEN now() + interval '1 hour' ELSE now() END "
            "FROM generate_series(1, %s) AS g",
            [blocked],
        )
        cursor.execute("ANALYZE pgoutbox_event")
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query("ordered_streams"),
            {"streams": [], "calls": True, "limit": None},
        )
        [[plan]] = cursor.fetchone()
        cursor.execute("SELECT pg_relation_size('pgoutbox_event') / 8192")
        (table_pages,) = cursor.fetchone()
    assert plan["Plan"]["Actual Rows"] == 0  # the blocked stream is not due
    assert table_pages > 500
    assert _buffers(plan["Plan"]) < 50, plan


def test_writing_two_keep_order_streams_in_opposite_orders_fails_clearly_never_deadlocks():
    """Two producers: one writes stream A then B, the other B then A, both in one transaction.
    PostgreSQL would detect a deadlock after a second; the second lock is tried for a bounded
    time instead, and the transaction that gives up gets an error naming both streams."""
    barrier = threading.Barrier(2, timeout=10)
    outcomes: dict[str, BaseException | None] = {}

    def produce(name: str, first: Callable[[str], None], second: Callable[[str], None]) -> None:
        try:
            with transaction.atomic():
                first(f"{name}-1")
                barrier.wait()
                second(f"{name}-2")
            outcomes[name] = None
        except BaseException as exc:
            outcomes[name] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(
            target=produce, args=("ab", outbox.notify_ordered, outbox.notify_ordered_b)
        ),
        threading.Thread(
            target=produce, args=("ba", outbox.notify_ordered_b, outbox.notify_ordered)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    failed = {name: exc for name, exc in outcomes.items() if exc is not None}
    assert len(outcomes) == 2 and len(failed) == 1, outcomes
    [error] = failed.values()
    assert isinstance(error, KeepOrderConflict), repr(error)
    assert "'ordered'" in str(error) and "'ordered-b'" in str(error)
    [survivor] = set(outcomes) - set(failed)
    assert sorted(OutboxEvent.objects.values_list("args__args", flat=True)) == [
        [f"{survivor}-1"],
        [f"{survivor}-2"],
    ]


def test_a_stream_another_relay_was_leasing_is_looked_at_again_not_left_for_the_poll(
    relay_thread,
):
    relay_thread(transport=MemoryTransport(), poll_interval=30)
    with connection.cursor() as cursor, transaction.atomic():
        # Play another relay in the middle of leasing the stream when the notification comes.
        cursor.execute("SELECT pg_advisory_xact_lock(1885831026, hashtext('ordered'))")
        with (
            override_settings(DATABASE_ROUTERS=["tests.app.routers.OutboxOnDirect"]),
            transaction.atomic(using="direct"),  # another session: it commits now
        ):
            outbox.notify_ordered("committed while the stream was being leased")
        time.sleep(0.05)
    released = time.monotonic()
    [run] = wait_until(outbox.runs, timeout=5)
    assert run.at - released < 1.0  # looked at again within milliseconds; the poll is 30 s


def test_looking_at_a_leased_stream_locks_none_of_its_rows():
    """A relay that finds a stream's head leased by another must not lock the leased rows, even
    for a moment: the lease holder, locking its next row to run it, would take it as "not mine
    any more" and leave it leased, stalling the stream for a whole CALL_LEASE (seen with two
    relays and four producers)."""
    with transaction.atomic():
        outbox.notify_ordered("first")
        outbox.notify_ordered("second")
    settings = get_settings()
    params = db.connection_params("default")
    with (
        db.connect(params, autocommit=True) as leaser,
        db.connect(params, autocommit=False) as looker,
        db.connect(params, autocommit=False) as runner,
    ):
        leased = CallStore(leaser).lease_ordered("ordered", 10, settings.call_lease)
        assert leased is not None and len(leased) == 2
        looker.execute(
            query("claim_ordered"), {"stream": "ordered", "limit": 10, "calls": True}
        ).fetchall()
        # The looker's transaction is still open: the lease holder can lock its rows.
        for row in leased:
            locked = runner.execute(
                query("lock_leased_call"), {"id": row.id, "lease": row.lease}
            ).fetchone()
            assert locked == (row.id,)
        looker.rollback()
        runner.rollback()
