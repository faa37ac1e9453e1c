"""pgoutbox.testing in a user's own tests: pytest style and Django ``TestCase`` style; the
README's examples are these."""

from __future__ import annotations

import datetime

import pytest
from django.db import transaction
from django.test import TestCase
from django.utils import timezone

import pgoutbox
from pgoutbox.models import OutboxEvent
from pgoutbox.testing import capture_events, drain
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox
from tests.app.models import Invoice, Order
from tests.support.function_events import SignalLog, pgoutbox_settings


@pytest.fixture
def runs():
    outbox.reset()
    yield
    outbox.reset()


@pytest.mark.django_db
def test_capture_lists_what_was_written_and_not_what_was_rolled_back(runs):
    with capture_events() as events:
        pgoutbox.send("/queue/orders", {"order": 1}, headers={"tenant": "a"}, stream="orders")
        try:
            with transaction.atomic():
                pgoutbox.send("/queue/orders", {"order": 2})
                raise RuntimeError("the order is refused")
        except RuntimeError:
            pass
        outbox.notify("hello", count=2)
        pgoutbox.send("/queue/raw", b"\xff\x00")
    assert [(e.kind, e.destination, e.function) for e in events] == [
        ("message", "/queue/orders", None),
        ("call", None, "tests.app.outbox.notify"),
        ("message", "/queue/raw", None),
    ]
    first, call, raw = events
    assert (first.body, first.headers["tenant"], first.stream) == ({"order": 1}, "a", "orders")
    assert (call.args, call.kwargs) == (["hello"], {"count": 2})
    assert raw.body == b"\xff\x00"
    assert outbox.runs() == []  # capturing runs nothing


@pytest.mark.django_db
def test_capture_sees_model_events():
    with capture_events() as events:
        Invoice.objects.create(reference="INV-1", amount=10)
    assert len(events) == 3  # one message per Config of @publish
    assert {e.destination for e in events} >= {"/topic/pgoutbox-test-invoice.v1"}


@pytest.mark.django_db
def test_drain_publishes_and_runs_in_the_test_transaction(runs):
    pgoutbox.send("/queue/orders", {"order": 1})
    outbox.create_order("R-1")  # a function event whose function writes a row
    outbox.notify_ordered("first")
    outbox.notify_ordered("second")

    result = drain()

    assert [(m.destination, m.body) for m in result.published] == [
        ("/queue/orders", b'{"order": 1}')
    ]
    assert result.calls == [
        "tests.app.outbox.create_order",
        "tests.app.outbox.notify_ordered",
        "tests.app.outbox.notify_ordered",
    ]
    assert [r.args for r in outbox.runs("notify_ordered")] == [("first",), ("second",)]
    assert Order.objects.filter(reference="R-1").exists()
    assert not OutboxEvent.objects.exists()
    assert isinstance(result.transport, MemoryTransport)
    assert len(result.transport.deliveries) == 1
    assert drain().published == []  # nothing left


@pytest.mark.django_db
def test_drain_records_failures_as_the_relay_does(runs):
    outbox.always_fails(1)
    outbox.poisoned_stream(1, fail=True)
    outbox.poisoned_stream(2)
    pgoutbox.send("/queue/ok", "fine")
    OutboxEvent.objects.create(kind="call", function="nowhere.registered", args={"args": []})

    result = drain()

    assert [m.destination for m in result.published] == ["/queue/ok"]
    errors = dict(result.failures)
    assert len(errors) == 3
    assert "RuntimeError: boom" in errors.values()
    assert "RuntimeError: poison 1" in errors.values()
    rows = {e.function: e for e in OutboxEvent.objects.all()}
    failed = rows["tests.app.outbox.always_fails"]
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert rows["nowhere.registered"].status == "dead"  # unknown functions die at once
    assert [r.args for r in outbox.runs("poisoned_stream")] == [(1,)]  # the stream waits
    assert drain().failures == []  # the failed ones wait for their retry: not due


@pytest.mark.django_db
def test_drain_refuses_to_loop_forever():
    pgoutbox.send("/queue/a", "x")
    with pytest.raises(RuntimeError, match="still due after 0 rounds"):
        drain(max_rounds=0)


@pytest.mark.django_db(transaction=True)
def test_drain_outside_a_transaction_commits_its_rounds():
    pgoutbox.send("/queue/a", "x")
    assert [m.body for m in drain().published] == [b"x"]
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_drain_sends_jaiminhos_signals_as_the_producer_and_the_relay_would(runs, signal_log):
    outbox.notify({"order": 1})  # publish-on-commit: its first run is its producer's
    outbox.always_fails("x")
    outbox.notify_ordered("k")  # keep-order: the relay runs it
    OutboxEvent.objects.create(kind="call", function="nowhere.registered", args={"args": []})
    drain()
    fired = {(f.signal, f.sender, str(f.event_payload)) for f in signal_log.fired}
    assert fired == {
        ("event_published", outbox.notify.original_func, "{'order': 1}"),
        ("event_failed_to_publish", outbox.always_fails.original_func, "x"),
        ("event_published_by_events_relay", outbox.notify_ordered.original_func, "k"),
        ("event_permanently_failed_by_events_relay", None, "{}"),
    }
    assert all(f.kwargs == {"signal", "event_payload"} for f in signal_log.fired)

    # The failed call's retry is a relay's, and its last attempt makes it dead.
    signal_log.fired.clear()
    with pgoutbox_settings(MAX_ATTEMPTS=2):
        due = timezone.now() - datetime.timedelta(hours=1)  # now() is the test's start
        OutboxEvent.objects.filter(status="pending").update(available_at=due)
        drain()
    assert signal_log.names() == ["event_permanently_failed_by_events_relay"]


class TestCaseStyle(TestCase):
    """The same helpers inside Django's TestCase, where nothing is ever committed."""

    def setUp(self) -> None:
        outbox.reset()

    def test_capture_and_drain(self) -> None:
        with capture_events() as events:
            outbox.create_order("T-1")
            pgoutbox.send("/queue/audit", {"order": "T-1"})
        self.assertEqual([e.kind for e in events], ["call", "message"])
        self.assertFalse(Order.objects.exists())  # not run yet: no commit in a TestCase

        result = drain()

        self.assertEqual(result.calls, ["tests.app.outbox.create_order"])
        self.assertEqual([m.destination for m in result.published], ["/queue/audit"])
        self.assertTrue(Order.objects.filter(reference="T-1").exists())

    def test_drain_sends_signals_though_nothing_commits(self) -> None:
        log = SignalLog().connect()
        self.addCleanup(log.disconnect)
        outbox.create_order("T-2")
        drain()
        self.assertEqual(log.names(), ["event_published"])
