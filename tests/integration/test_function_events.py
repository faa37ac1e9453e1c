"""@save_to_outbox / @save_to_outbox_stream (django-jaiminho's API), publish-on-commit, against
real PostgreSQL: durable rows, the producer's run after COMMIT, the listener's takeover,
retries, dead letters, signals and event_cleaner."""

from __future__ import annotations

import datetime
import decimal
import itertools
import json
import os
import sys
import time

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from pgoutbox import db, registry
from pgoutbox.models import OutboxEvent
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox
from tests.app.models import Order
from tests.support.function_events import pgoutbox_settings, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("runs")]


def test_call_is_recorded_in_the_transaction_and_runs_once_after_commit(relay_thread):
    relay_thread(transport=MemoryTransport())
    with transaction.atomic():
        assert outbox.notify({"order": 1}, "x", flag=True) is None  # jaiminho returns None
        [row] = OutboxEvent.objects.all()
        assert (row.kind, row.function, row.stream) == ("call", "tests.app.outbox.notify", "")
        assert row.args == {
            "args": [{"order": 1}, "x"],
            "kwargs": {"flag": True},
            "using": "default",
        }
        assert row.available_at > timezone.now()  # leased: the listener leaves it alone
        assert outbox.runs() == []

    [run] = outbox.runs()
    assert (run.args, run.kwargs) == (({"order": 1}, "x"), {"flag": True})
    assert run.thread == "MainThread"  # the producer ran it, not the relay
    assert not OutboxEvent.objects.exists()
    time.sleep(0.5)
    assert len(outbox.runs()) == 1


def test_rolled_back_call_never_runs(relay_thread):
    relay_thread(transport=MemoryTransport())
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.notify("rolled back")
        raise RuntimeError("business rule failed")
    time.sleep(0.5)
    assert outbox.runs() == []
    assert not OutboxEvent.objects.exists()


def test_stream_decorator_records_its_stream():
    with transaction.atomic():
        outbox.notify_to_stream(7)
        assert OutboxEvent.objects.get().stream == "my-stream"
    assert [r.args for r in outbox.runs("notify_to_stream")] == [(7,)]


def test_arguments_come_back_through_the_default_encoder():
    with transaction.atomic():
        outbox.notify(datetime.date(2026, 1, 2), amount=decimal.Decimal("1.50"))
    [run] = outbox.runs()
    assert (run.args, run.kwargs) == (("2026-01-02",), {"amount": "1.50"})


def test_unencodable_argument_raises_type_error_before_writing():
    with transaction.atomic():
        with pytest.raises(TypeError, match="not JSON-serializable"):
            outbox.notify(object())
        Order.objects.create(reference="still usable")
    assert not OutboxEvent.objects.exists()
    assert Order.objects.filter(reference="still usable").exists()
    assert outbox.runs() == []


def test_function_writes_commit_with_the_rows_removal():
    with transaction.atomic():
        outbox.create_order("from-hook")
    assert Order.objects.filter(reference="from-hook").exists()
    assert not OutboxEvent.objects.exists()


def test_rows_are_kept_as_sent_when_delete_after_send_is_off():
    with pgoutbox_settings(DELETE_AFTER_SEND=False), transaction.atomic():
        outbox.notify(1)
    row = OutboxEvent.objects.get()
    assert row.status == "sent" and row.sent_at is not None


def test_listener_runs_the_call_when_the_producer_dies_after_commit(
    relay_thread, producer_dies_after_commit, signal_log
):
    with pgoutbox_settings(PUBLISH_ON_COMMIT_LEASE=1.0):
        relay_thread(transport=MemoryTransport(), poll_interval=0.1)
        with transaction.atomic():
            outbox.notify("orphan")
        committed = time.monotonic()
        time.sleep(0.5)
        assert outbox.runs() == []  # NOTIFY woke the listener, the lease held it off
        [run] = wait_until(outbox.runs, timeout=10)
    assert run.args == ("orphan",)
    assert run.thread != "MainThread"
    assert run.at - committed >= 0.9
    wait_until(lambda: not OutboxEvent.objects.exists())
    wait_until(lambda: signal_log.of("event_published_by_events_relay"))
    [fired] = signal_log.of("event_published_by_events_relay")
    assert fired.sender is outbox.notify.original_func
    assert fired.event_payload == "orphan"
    assert fired.kwargs == {"signal", "event_payload"}
    assert "event_published" not in signal_log.names()


def test_an_unregistered_function_waits_for_a_relay_that_has_it_without_importing_it(
    relay_thread, producer_dies_after_commit, signal_log, monkeypatch
):
    # A relay deployed without the function's module hands the call back (it was dead-lettered
    # at once, for a relay with the code to never see it).
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO pgoutbox_event (kind, function, args) VALUES ('call', %s, %s)",
            ["tests.app.never_imported.run", json.dumps({"args": ["later"], "kwargs": {}})],
        )
    with pgoutbox_settings(PUBLISH_ON_COMMIT_LEASE=0.1, RETRY_BACKOFF_BASE=0.05):
        relay_thread(transport=MemoryTransport(), poll_interval=0.1)
        waiting = wait_until(lambda: OutboxEvent.objects.filter(last_error__isnull=False).first())
        assert "is not registered in this relay's process" in waiting.last_error
        assert "it waits for a relay that has it" in waiting.last_error
        time.sleep(1)  # handed back again and again, never counted, never dead
        waiting.refresh_from_db()
        assert (waiting.status, waiting.attempts) == ("pending", 0)
        assert "tests.app.never_imported" not in sys.modules
        assert "PGOUTBOX_NEVER_IMPORTED_WAS_IMPORTED" not in os.environ
        assert "PGOUTBOX_NEVER_IMPORTED_RAN" not in os.environ
        outbox.notify("after")  # the listener keeps going
        wait_until(lambda: outbox.runs("notify"))
        # The code arrives (as in a relay deployed with it): the call runs, once.
        arrived = outbox.notify.original_func
        monkeypatch.setitem(registry._functions, "tests.app.never_imported.run", arrived)
        wait_until(lambda: len(outbox.runs("notify")) == 2)
        wait_until(lambda: not OutboxEvent.objects.exists())
    assert [run.args for run in outbox.runs("notify")] == [("after",), ("later",)]
    assert "event_permanently_failed_by_events_relay" not in signal_log.names()


def test_failing_function_is_retried_with_backoff_then_dead(relay_thread, signal_log):
    with pgoutbox_settings(MAX_ATTEMPTS=3, RETRY_BACKOFF_BASE=0.3, RETRY_BACKOFF_MAX=0.6):
        relay_thread(transport=MemoryTransport(), poll_interval=0.05)
        with transaction.atomic():
            outbox.always_fails("payload")
        dead = wait_until(lambda: OutboxEvent.objects.filter(status="dead").first())
    attempts = outbox.runs("always_fails")
    assert [r.thread == "MainThread" for r in attempts] == [True, False, False]
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.3 * 0.75 - 0.01 and gaps[1] >= 0.6 * 0.75 - 0.01  # backoff, jittered
    assert (dead.attempts, dead.last_error) == (3, "RuntimeError: boom")
    time.sleep(0.7)
    assert len(outbox.runs("always_fails")) == 3  # dead: never run again
    assert signal_log.names() == [
        "event_failed_to_publish",
        "event_failed_to_publish_by_events_relay",
        "event_permanently_failed_by_events_relay",
    ]
    assert {f.event_payload for f in signal_log.fired} == {"payload"}
    assert {f.sender for f in signal_log.fired} == {outbox.always_fails.original_func}


def test_non_retryable_exception_is_dead_at_once(signal_log):
    with (
        pgoutbox_settings(NON_RETRYABLE_EXCEPTIONS=["builtins.RuntimeError"]),
        transaction.atomic(),
    ):
        outbox.always_fails("x")
    row = OutboxEvent.objects.get()
    assert (row.status, row.attempts) == ("dead", 1)
    assert signal_log.names() == ["event_permanently_failed"]


def test_event_published_fires_after_the_hooks_commit(signal_log):
    seen: list[bool] = []
    from pgoutbox import signals

    def receiver(sender, event_payload, **kwargs):
        seen.append(OutboxEvent.objects.exists())

    signals.event_published.connect(receiver)
    try:
        with transaction.atomic():
            outbox.notify({"id": 3}, "second")
            assert signal_log.fired == []
    finally:
        signals.event_published.disconnect(receiver)
    assert seen == [False]  # the row's removal was committed before the signal
    [fired] = signal_log.fired
    assert (fired.signal, fired.sender, fired.event_payload) == (
        "event_published",
        outbox.notify.original_func,
        {"id": 3},
    )


def test_a_raising_receiver_neither_fails_the_caller_nor_undoes_the_run():
    from pgoutbox import signals

    def receiver(**kwargs):
        raise ValueError("receiver bug")

    signals.event_published.connect(receiver)
    try:
        with transaction.atomic():
            outbox.notify(1)
    finally:
        signals.event_published.disconnect(receiver)
    assert len(outbox.runs()) == 1
    assert not OutboxEvent.objects.exists()


def test_events_relay_command_runs_pending_calls(producer_dies_after_commit):
    with pgoutbox_settings(PUBLISH_ON_COMMIT_LEASE=0.05):
        outbox.notify_to_stream("late")
        time.sleep(0.2)
        call_command("events_relay", "--stream", "my-stream")
    assert [r.args for r in outbox.runs()] == [("late",)]
    assert not OutboxEvent.objects.exists()


def test_event_cleaner_deletes_only_old_sent_rows():
    now = timezone.now()
    old, recent = now - datetime.timedelta(days=8), now - datetime.timedelta(days=6)
    rows = {
        "old sent": OutboxEvent.objects.create(kind="call", status="sent", sent_at=old),
        "recent sent": OutboxEvent.objects.create(kind="call", status="sent", sent_at=recent),
        "old pending": OutboxEvent.objects.create(kind="call", sent_at=old),
        "old dead": OutboxEvent.objects.create(kind="call", status="dead", sent_at=old),
    }
    OutboxEvent.objects.filter(pk__in=[r.pk for r in rows.values()]).update(created_at=old)
    call_command("event_cleaner")
    left = set(OutboxEvent.objects.values_list("pk", flat=True))
    assert left == {rows[k].pk for k in ("recent sent", "old pending", "old dead")}

    with pgoutbox_settings(TIME_TO_DELETE=datetime.timedelta(days=1)):
        call_command("event_cleaner")
    left = set(OutboxEvent.objects.values_list("pk", flat=True))
    assert left == {rows[k].pk for k in ("old pending", "old dead")}


def test_the_producers_hook_never_runs_a_row_a_relay_holds_ran_or_tried(
    relay_thread, producer_dies_after_commit, monkeypatch
):
    from pgoutbox.producer import functions

    def late_hook(func, event_id):
        # The producer's hook, arriving after the lease: it must leave the row to the relay.
        monkeypatch.setattr(functions, "_run_after_commit_enabled", True)
        functions.run_after_commit(func.original_func, event_id, ("late",), {}, "default")
        monkeypatch.setattr(functions, "_run_after_commit_enabled", False)

    with pgoutbox_settings(PUBLISH_ON_COMMIT_LEASE=0.05, RETRY_BACKOFF_BASE=60.0):
        outbox.notify("held")
        held = OutboxEvent.objects.get()
        relay_conn = db.connect(db.connection_params("default"), autocommit=False)
        try:  # a relay holds it
            relay_conn.execute("SELECT 1 FROM pgoutbox_event WHERE id = %s FOR UPDATE", [held.pk])
            late_hook(outbox.notify, held.pk)
        finally:
            relay_conn.close()
        assert outbox.runs() == []

        relay_thread(transport=MemoryTransport(), poll_interval=0.05)
        wait_until(lambda: not OutboxEvent.objects.exists())  # the relay ran it
        late_hook(outbox.notify, held.pk)
        assert [r.args for r in outbox.runs()] == [("held",)]

        outbox.always_fails("tried")
        # Leased (attempt counted), run, failed: its error is recorded.
        tried = wait_until(
            lambda: OutboxEvent.objects.filter(attempts=1, last_error__isnull=False).first()
        )
        late_hook(outbox.always_fails, tried.pk)
        assert len(outbox.runs("always_fails")) == 1
