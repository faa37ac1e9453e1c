"""The ``subscribe`` consumer against real RabbitMQ and PostgreSQL: inbox, dedupe, DLQ,
reconnect, and the command as a process."""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

import pgoutbox
from pgoutbox.conf import get_settings
from pgoutbox.consumer.payload import Payload
from pgoutbox.consumer.subscriber import Subscriber
from pgoutbox.models import ReceivedMessage
from tests.app.models import Order
from tests.support.consumer import Calls, SubscriberThread, send_raw, wait_until
from tests.support.factories import closing_factory
from tests.support.relay_runner import run_command, start_command, terminate
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def subscriber_thread(
    transactional_db: None, stomp_broker: tuple[str, int]
) -> Iterator[Callable[..., SubscriberThread]]:
    """Factory: a Subscriber on ``destination`` (default ``/queue/<queue>``) running in a
    thread until teardown."""

    def make(
        callback: Callable[[Payload], object],
        queue: str,
        destination: str | None = None,
        queue_name: str | None = None,
        **settings: Any,
    ) -> SubscriberThread:
        subscriber = Subscriber(
            callback,
            destination or dest(queue),
            queue_name,
            settings=dataclasses.replace(get_settings(), **settings),
        )
        return SubscriberThread(subscriber).start()

    yield from closing_factory(make, SubscriberThread.stop)


def dest(queue: str) -> str:
    """The README's destination: producers SEND to ``/queue/<q>``, the consumer reads it."""
    return f"/queue/{queue}"


def record_order(calls: Calls) -> Callable[[Payload], None]:
    def callback(payload: Payload) -> None:
        with transaction.atomic():
            Order.objects.create(reference=payload.body["ref"])
            payload.save()
        calls.add(payload)  # once committed

    return callback


def test_callback_writes_and_inbox_row_commit_together(subscriber_thread, relay_thread, queue_name):
    calls = Calls()
    subscriber_thread(record_order(calls), queue_name)
    relay_thread()
    first = pgoutbox.send(dest(queue_name), {"ref": "A-1"})
    second = pgoutbox.send(dest(queue_name), {"ref": "A-2"})

    payloads = calls.wait_for(2)  # prefetch 1: the second comes only once the first is acked
    assert [p.body for p in payloads] == [{"ref": "A-1"}, {"ref": "A-2"}]
    assert payloads[0].message_id == str(first)
    assert payloads[0].headers["destination"] == dest(queue_name)
    assert sorted(Order.objects.values_list("reference", flat=True)) == ["A-1", "A-2"]
    rows = {r.message_id: r for r in ReceivedMessage.objects.all()}
    assert set(rows) == {str(first), str(second)}
    assert json.loads(bytes(rows[str(first)].body)) == {"ref": "A-1"}
    assert rows[str(first)].destination == dest(queue_name)


@pytest.mark.parametrize("header", ["pgoutbox-message-id", "dop-msg-id", "cap-msg-id"])
def test_redelivered_message_id_is_acked_and_skipped(
    subscriber_thread, stomp_broker, queue_name, header
):
    calls = Calls()
    subscriber_thread(record_order(calls), queue_name)
    destination = dest(queue_name)
    send_raw(stomp_broker, destination, '{"ref": "B-1"}', {header: "same-id"})
    send_raw(stomp_broker, destination, '{"ref": "B-1 again"}', {header: "same-id"})
    send_raw(stomp_broker, destination, '{"ref": "B-2"}', {header: "other-id"})

    # B-2 is processed only after the duplicate was acked (prefetch 1)
    payloads = calls.wait_for(2)
    assert [p.body["ref"] for p in payloads] == ["B-1", "B-2"]
    assert [p.message_id for p in calls.wait_for(3, timeout=0.5)] == ["same-id", "other-id"]
    assert sorted(Order.objects.values_list("reference", flat=True)) == ["B-1", "B-2"]
    assert ReceivedMessage.objects.count() == 2


def test_callback_exception_rolls_back_and_dead_letters_to_the_dlq(
    subscriber_thread, stomp_broker, stomp_consumer, queue_name
):
    calls = Calls()

    def failing(payload: Payload) -> None:
        calls.add(payload)
        with transaction.atomic():
            Order.objects.create(reference="never")
            payload.save()
            raise KeyError("business rule")

    subscriber_thread(failing, queue_name)
    dlq = stomp_consumer(f"/queue/DLQ.{queue_name}")
    send_raw(stomp_broker, dest(queue_name), "not json", {"dop-msg-id": "poison"})

    [dead] = dlq.wait_for(1)
    assert dead.body == b"not json"
    assert dead.headers["dop-msg-id"] == "poison"
    assert dead.headers["pgoutbox-dead-letter-from"] == dest(queue_name)
    assert dead.headers["pgoutbox-dead-letter-reason"] == "KeyError('business rule')"
    [payload] = calls.wait_for(1)
    assert payload.body == "not json"  # not JSON: the text
    assert dlq.quiet_for(0.5) == [dead]  # not requeued: delivered to the callback once
    assert len(calls.payloads) == 1
    assert not Order.objects.exists()
    assert not ReceivedMessage.objects.exists()


def test_nack_from_the_callback_dead_letters_without_requeue(
    subscriber_thread, stomp_broker, stomp_consumer, queue_name
):
    calls = Calls()

    def reject(payload: Payload) -> None:
        calls.add(payload)
        payload.nack()

    subscriber_thread(reject, queue_name)
    dlq = stomp_consumer(f"/queue/DLQ.{queue_name}")
    send_raw(stomp_broker, dest(queue_name), '{"ref": "C-1"}')

    assert [m.body for m in dlq.wait_for(1)] == [b'{"ref": "C-1"}']
    assert dlq.messages[0].headers["pgoutbox-dead-letter-reason"] == "payload.nack()"
    time.sleep(0.5)
    assert len(calls.payloads) == 1


def test_callback_returning_without_save_or_nack_is_acked_with_a_warning(
    subscriber_thread, stomp_broker, queue_name, caplog
):
    calls = Calls()
    subscriber_thread(calls.add, queue_name)
    send_raw(stomp_broker, dest(queue_name), '{"n": 1}')
    send_raw(stomp_broker, dest(queue_name), '{"n": 2}')

    # the second arrives only once the first is settled (prefetch 1): no stall
    assert [p.body for p in calls.wait_for(2)] == [{"n": 1}, {"n": 2}]
    assert wait_until(lambda: all(p.acked for p in calls.payloads))
    assert "without payload.save() or payload.nack()" in caplog.text
    assert not ReceivedMessage.objects.exists()


def test_consumer_reconnects_and_resubscribes_after_an_outage(
    subscriber_thread, stomp_broker, queue_name
):
    proxy = TcpProxy(stomp_broker)
    try:
        calls = Calls()
        consumer = subscriber_thread(
            record_order(calls),
            queue_name,
            stomp_hosts=(("127.0.0.1", proxy.port),),
            reconnect_backoff_max=0.5,
        )
        # Stable ids: an ack lost in the cut makes the broker redeliver D-1, and the inbox
        # must then skip it rather than run the callback twice.
        send_raw(stomp_broker, dest(queue_name), '{"ref": "D-1"}', {"pgoutbox-message-id": "d-1"})
        calls.wait_for(1)

        proxy.cut()
        deadline = time.monotonic() + 10
        while consumer.subscriber.subscribed.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not consumer.subscriber.subscribed.is_set()
        send_raw(  # during the outage
            stomp_broker, dest(queue_name), '{"ref": "D-2"}', {"pgoutbox-message-id": "d-2"}
        )
        time.sleep(1.0)  # a few failed reconnects
        proxy.restore()

        assert consumer.subscriber.subscribed.wait(15)
        assert [p.body["ref"] for p in calls.wait_for(2, timeout=15)] == ["D-1", "D-2"]
        assert len(calls.wait_for(3, timeout=1.0)) == 2
    finally:
        proxy.close()


def _wait_for_text(log: Path, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the log within {timeout}s:\n{log.read_text()}")


def test_subscribe_command_finishes_the_message_on_sigterm_and_exits_0(
    stomp_broker, queue_name, tmp_path
):
    log = tmp_path / "subscribe.log"
    process = start_command(
        ["subscribe", "tests.app.callbacks.slow_record", dest(queue_name)], log=log
    )
    try:
        _wait_for_text(log, "subscribed to")
        send_raw(stomp_broker, dest(queue_name), '{"ref": "E-1"}', {"dop-msg-id": "e1"})
        _wait_for_text(log, "callback started on e1")
        assert terminate(process) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert "callback done on e1" in text
    assert "consumer stopped" in text
    assert list(Order.objects.values_list("reference", flat=True)) == ["E-1"]
    assert list(ReceivedMessage.objects.values_list("message_id", flat=True)) == ["e1"]


def test_subscribe_command_names_a_callback_it_cannot_import():
    result = run_command(["subscribe", "tests.app.callbacks.missing", "/queue/x"])
    assert result.returncode != 0
    assert "Could not import 'tests.app.callbacks.missing'" in result.stderr
    result = run_command(["subscribe", "tests.app.callbacks.not_a_function", "/queue/x"])
    assert "is not callable" in result.stderr


def test_publish_is_an_alias_of_outbox_listen(stomp_consumer, tmp_path):
    consumer = stomp_consumer()
    log = tmp_path / "publish.log"
    process = start_command(["publish"], log=log)
    try:
        message_id = pgoutbox.send(consumer.destination, {"via": "publish"})
        [received] = consumer.wait_for(1, timeout=20)
        assert received.message_id == str(message_id)
        assert terminate(process) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_event_cleaner_deletes_inbox_rows_older_than_days_to_keep_data(settings):
    old = ReceivedMessage.objects.create(message_id="old")
    recent = ReceivedMessage.objects.create(message_id="recent")
    ReceivedMessage.objects.filter(pk=old.pk).update(
        received_at=timezone.now() - datetime.timedelta(days=31)
    )
    ReceivedMessage.objects.filter(pk=recent.pk).update(
        received_at=timezone.now() - datetime.timedelta(days=29)
    )
    out = io.StringIO()
    call_command("event_cleaner", stdout=out)
    assert "Successfully deleted 1 inbox rows" in out.getvalue()
    assert list(ReceivedMessage.objects.values_list("message_id", flat=True)) == ["recent"]

    settings.PGOUTBOX = {**settings.PGOUTBOX, "DAYS_TO_KEEP_DATA": 7}
    call_command("event_cleaner", stdout=io.StringIO())
    assert not ReceivedMessage.objects.exists()
