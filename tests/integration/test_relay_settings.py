"""The relay's options and settings mean what they say, from the command line, from
``call_command`` and from ``settings.PGOUTBOX``."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

import pgoutbox
from pgoutbox.models import OutboxEvent
from pgoutbox.runner import build_relay
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox
from tests.support.function_events import pgoutbox_settings, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("runs")]

MEMORY = "pgoutbox.transports.memory.MemoryTransport"


@pytest.mark.parametrize(
    ("command", "args", "options", "named"),
    [
        ("outbox_listen", ["--batch-size", "-1"], {}, "--batch-size"),
        ("outbox_listen", ["--poll-interval", "-1"], {}, "--poll-interval"),
        ("outbox_listen", [], {"batch_size": 0}, "--batch-size"),
        ("outbox_listen", [], {"poll_interval": "soon"}, "--poll-interval"),
        ("events_relay", [], {"loop_interval": -0.5}, "--loop-interval"),
        ("events_relay", [], {"batch_size": 2.5}, "--batch-size"),
        ("events_relay", [], {"stream": 7}, "--stream"),
        ("event_cleaner", [], {"database": ["nowhere"]}, "--database"),
    ],
)
def test_bad_options_fail_at_once_naming_the_option(command, args, options, named):
    with pytest.raises(CommandError, match=named):
        call_command(command, *args, stdout=io.StringIO(), **options)


def test_call_command_with_a_stream_keyword_relays_that_stream():
    """jaiminho's users write call_command("events_relay", stream="my-stream"): it used to
    become ['m', 'y', '-', ...] and relay nothing."""
    wanted = pgoutbox.send("/queue/pgoutbox-wanted", "wanted", stream="my-stream")
    pgoutbox.send("/queue/pgoutbox-other", "other", stream="other")
    with pgoutbox_settings(TRANSPORT=MEMORY):
        out = io.StringIO()
        call_command("events_relay", stream="my-stream", stdout=out)
    assert out.getvalue().strip() == "relayed 1 events"
    assert list(OutboxEvent.objects.values_list("stream", flat=True)) == ["other"]
    assert not OutboxEvent.objects.filter(message_id=wanted).exists()


def test_transport_setting_builds_the_memory_transport():
    with pgoutbox_settings(TRANSPORT=MEMORY):
        relay = build_relay(listen=False)
    assert isinstance(relay.transport, MemoryTransport)


def test_the_publish_on_commit_lease_counts_from_the_insert_not_the_transactions_start(
    producer_dies_after_commit,
):
    with pgoutbox_settings(PUBLISH_ON_COMMIT_LEASE=2.0), transaction.atomic():
        time.sleep(1.0)  # a long transaction: now() stays at its start
        outbox.notify("late in the transaction")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT extract(epoch FROM available_at - clock_timestamp()) FROM pgoutbox_event"
            )
            (remaining,) = cursor.fetchone()
    assert 1.5 < remaining <= 2.0  # the whole lease is left, not a second less


def test_delete_after_send_false_keeps_calls_only(relay_thread, producer_dies_after_commit):
    """JAIMINHO_CONFIG's DELETE_AFTER_SEND (False unless set) is about function events; a
    message from send() is deleted once the broker has it, whatever it says."""
    with pgoutbox_settings(DELETE_AFTER_SEND=False, PUBLISH_ON_COMMIT_LEASE=0.05):
        transport = MemoryTransport()
        relay_thread(transport=transport, poll_interval=0.1)
        pgoutbox.send("/queue/pgoutbox-deleted", "deleted once sent")
        outbox.notify("kept as sent")
        wait_until(lambda: transport.deliveries and outbox.runs("notify"))
        kept = wait_until(lambda: OutboxEvent.objects.filter(status="sent").first())
        wait_until(lambda: OutboxEvent.objects.count() == 1)
    assert (kept.kind, kept.sent_at is not None) == ("call", True)


def test_the_relays_sessions_pin_their_own_settings(database_setting):
    """Whatever the database or role defaults are, a relay session is READ COMMITTED, has
    server-side TCP keepalives, and timeouts above its longest broker wait."""
    database_setting("default_transaction_isolation", "serializable")
    database_setting("idle_in_transaction_session_timeout", "1s")
    database_setting("statement_timeout", "1s")
    relay = build_relay(listen=False, transport=MemoryTransport())
    with relay.connect(False) as conn:
        shown = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]
            for name in (
                "transaction_isolation",
                "idle_in_transaction_session_timeout",
                "statement_timeout",
                "tcp_keepalives_idle",
            )
        }
    assert shown == {
        "transaction_isolation": "read committed",
        "idle_in_transaction_session_timeout": "25s",  # STOMP connect 5 s + receipts 10 s + 10
        "statement_timeout": "30s",
        "tcp_keepalives_idle": "20",
    }


def test_a_batch_stops_at_its_byte_bound():
    for n in range(10):
        pgoutbox.send("/queue/pgoutbox-bytes", "x" * 300, headers={"n": str(n)})
    with pgoutbox_settings(MAX_BATCH_BYTES=1000):
        relay = build_relay(listen=False, transport=MemoryTransport())
    relay.open()
    try:
        report = relay.relay_batch()
        assert (report.delivered, report.more) == (4, True)  # 0, 300, 600, 900 bytes before
        assert relay.drain() == 6
    finally:
        relay.close()


def test_sent_at_is_each_calls_own_finishing_moment(runs):
    """A kept call's ``sent_at`` is when that call finished (``clock_timestamp()`` in the
    transaction that commits its writes): not the start of that transaction, before the
    function ran, and not one value shared by the calls run after one commit."""
    with pgoutbox_settings(DELETE_AFTER_SEND=False):
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            (before,) = cursor.fetchone()
        with transaction.atomic():
            outbox.sleep_for(0.3)  # both run in the producer's hook, one after the other
            outbox.sleep_for(0.3)
    first, second = OutboxEvent.objects.filter(status="sent").order_by("id")
    assert (first.sent_at - before).total_seconds() >= 0.3
    assert (second.sent_at - first.sent_at).total_seconds() >= 0.3
