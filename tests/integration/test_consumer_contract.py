"""What the consumer promises any producer and any callback, against real RabbitMQ and
PostgreSQL: foreign producers on every destination kind, dedupe per consumer, transient
database errors retried, the inbox row in the callback's own transaction, the correlation id."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

import pgoutbox
from pgoutbox.conf import get_settings
from pgoutbox.consumer.payload import Payload
from pgoutbox.consumer.subscriber import Subscriber
from pgoutbox.models import OutboxEvent, ReceivedMessage
from tests.app.models import Invoice, Order
from tests.support.consumer import (
    Calls,
    StompProducer,
    SubscriberThread,
    send_raw,
    wait_until,
)
from tests.support.factories import closing_factory

pytestmark = pytest.mark.django_db(transaction=True)

# django-outbox-pattern's producer headers (its Published rows, sent verbatim).
DOP_HEADERS = {
    "dop-msg-destination": "/queue/orders",
    "dop-msg-type": "Published",
    "dop-msg-sent-time": "2026-12-01T10:00:00.000Z",
    "dop-correlation-id": "3b0f8a4e-2f4c-4d7e-9a55-0e0c1d2e3f40",
}


@pytest.fixture
def subscribe(
    transactional_db: None, stomp_broker: tuple[str, int]
) -> Iterator[Callable[..., SubscriberThread]]:
    """Factory: ``subscribe(callback, destination, queue_name=None, **settings)`` running in
    a thread until teardown."""

    def make(
        callback: Callable[[Payload], object],
        destination: str,
        queue_name: str | None = None,
        **settings: Any,
    ) -> SubscriberThread:
        base = dataclasses.replace(get_settings(), reconnect_backoff_max=1.0)
        subscriber = Subscriber(
            callback, destination, queue_name, settings=dataclasses.replace(base, **settings)
        )
        return SubscriberThread(subscriber).start()

    yield from closing_factory(make, SubscriberThread.stop)


@pytest.fixture
def producer(stomp_broker: tuple[str, int]) -> Iterator[StompProducer]:
    made = StompProducer(stomp_broker)
    yield made
    made.close()


def record(calls: Calls, prefix: str = "") -> Callable[[Payload], None]:
    """A callback writing an Order (``prefix`` + the body's ``ref``) and the inbox row."""

    def callback(payload: Payload) -> None:
        with transaction.atomic():
            Order.objects.create(reference=prefix + payload.body["ref"])
            payload.save()
        calls.add(payload)

    return callback


def produce_from_every_kind(producer: StompProducer, destination: str, round_: str) -> set[str]:
    """One message from a plain stomp.py client, one with django-outbox-pattern's headers and
    one through pgoutbox's relay; return their refs."""
    producer.send(destination, json.dumps({"ref": f"plain-{round_}"}))
    producer.send(
        destination,
        json.dumps({"ref": f"dop-{round_}"}),
        {**DOP_HEADERS, "dop-msg-id": f"dop-{round_}"},
    )
    with transaction.atomic():
        pgoutbox.send(destination, {"ref": f"relay-{round_}"})
    return {f"plain-{round_}", f"dop-{round_}", f"relay-{round_}"}


def test_the_readme_example_on_queue_orders_works_with_any_producer_before_and_after(
    subscribe, relay_thread, producer, queue_name
):
    """The README's `/queue/orders`: foreign producers SEND before the consumer exists and
    after it subscribed; no SEND fails, no connection is closed, everything is consumed."""
    destination = f"/queue/{queue_name}"
    relay_thread()
    expected = produce_from_every_kind(producer, destination, "before")
    calls = Calls()
    subscribe(record(calls), destination)
    expected |= produce_from_every_kind(producer, destination, "after")

    payloads = calls.wait_for(6, timeout=20)
    assert {p.body["ref"] for p in payloads} == expected
    assert not producer.errors and not producer.disconnected
    assert not OutboxEvent.objects.exists()  # the relay's SENDs were confirmed
    assert ReceivedMessage.objects.filter(consumer=queue_name).count() == 6


@pytest.mark.parametrize("kind", ["topic", "exchange", "amq-queue"])
def test_every_destination_kind_accepts_foreign_producers_and_plain_queue_sends(
    subscribe, relay_thread, producer, queue_name, kind
):
    destination = {
        "topic": f"/topic/{queue_name}",
        "exchange": f"/exchange/amq.direct/{queue_name}",
        "amq-queue": f"/amq/queue/{queue_name}",
    }[kind]
    expected = set()
    if kind == "amq-queue":  # /amq/queue/ reads an existing queue: a plain SEND declares it
        producer.send(f"/queue/{queue_name}", json.dumps({"ref": "declared"}))
        expected.add("declared")
    relay_thread()
    calls = Calls()
    subscribe(record(calls), destination, queue_name)
    expected |= produce_from_every_kind(producer, destination, "to-destination")
    # The consumer's queue has no argument: a plain SEND straight to it works too.
    expected |= produce_from_every_kind(producer, f"/queue/{queue_name}", "to-queue")

    payloads = calls.wait_for(len(expected), timeout=20)
    assert {p.body["ref"] for p in payloads} == expected
    assert not producer.errors and not producer.disconnected


def test_one_message_fanned_out_to_two_queues_runs_both_callbacks_of_one_service(
    subscribe, stomp_broker, queue_name
):
    destination = f"/exchange/amq.direct/{queue_name}"
    first, second = Calls(), Calls()
    subscribe(record(first, "billing:"), destination, f"{queue_name}-billing")
    subscribe(record(second, "shipping:"), destination, f"{queue_name}-shipping")
    send_raw(stomp_broker, destination, '{"ref": "F-1"}', {"dop-msg-id": "fan-1"})

    assert [p.message_id for p in first.wait_for(1)] == ["fan-1"]
    assert [p.message_id for p in second.wait_for(1)] == ["fan-1"]
    assert sorted(Order.objects.values_list("reference", flat=True)) == [
        "billing:F-1",
        "shipping:F-1",
    ]
    assert sorted(ReceivedMessage.objects.values_list("consumer", "message_id")) == [
        (f"{queue_name}-billing", "fan-1"),
        (f"{queue_name}-shipping", "fan-1"),
    ]


def test_a_transient_database_error_is_retried_not_dead_lettered(
    subscribe, stomp_broker, stomp_consumer, queue_name, caplog
):
    """The first attempt loses its database connection (the server terminates it): the
    message comes back and is processed exactly once; nothing reaches the DLQ."""
    attempts = Calls()

    def flaky(payload: Payload) -> None:
        attempts.add(payload)
        with transaction.atomic():
            Order.objects.create(reference="T-1")
            if len(attempts.payloads) == 1:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            payload.save()

    dlq = stomp_consumer(f"/queue/DLQ.{queue_name}")
    subscribe(flaky, f"/queue/{queue_name}")
    send_raw(stomp_broker, f"/queue/{queue_name}", '{"ref": "T-1"}', {"dop-msg-id": "t-1"})

    assert [p.message_id for p in attempts.wait_for(2)] == ["t-1", "t-1"]
    assert list(Order.objects.values_list("reference", flat=True)) == ["T-1"]
    assert list(ReceivedMessage.objects.values_list("message_id", flat=True)) == ["t-1"]
    assert dlq.quiet_for(1.0) == []
    assert len(attempts.payloads) == 2
    assert "database unavailable" in caplog.text


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_save_writes_in_the_transaction_of_the_callbacks_alias(
    subscribe, stomp_broker, stomp_consumer, queue_name
):
    """The callback's transaction is on another alias than PGOUTBOX['DATABASE']: its
    rollback takes the inbox row with it, so the message is not lost as "recorded"."""
    calls = Calls()

    def on_other_alias(payload: Payload) -> None:
        calls.add(payload)
        with transaction.atomic(using="other"):
            Order.objects.using("other").create(reference=payload.body["ref"])
            payload.save()
            assert payload.message.pk is not None
            if payload.body["ref"] == "fails":
                raise KeyError("after save")

    dlq = stomp_consumer(f"/queue/DLQ.{queue_name}")
    subscribe(on_other_alias, f"/queue/{queue_name}")
    send_raw(stomp_broker, f"/queue/{queue_name}", '{"ref": "fails"}', {"dop-msg-id": "a"})
    send_raw(stomp_broker, f"/queue/{queue_name}", '{"ref": "works"}', {"dop-msg-id": "b"})
    calls.wait_for(2)
    assert [m.headers["dop-msg-id"] for m in dlq.wait_for(1)] == ["a"]
    assert wait_until(lambda: ReceivedMessage.objects.exists())
    assert list(ReceivedMessage.objects.values_list("message_id", flat=True)) == ["b"]
    assert list(Order.objects.values_list("reference", flat=True)) == ["works"]


def test_save_outside_atomic_is_a_clear_error_and_the_message_is_dead_lettered(
    subscribe, stomp_broker, stomp_consumer, queue_name
):
    def careless(payload: Payload) -> None:
        assert payload.message.pk is None  # django-outbox-pattern's unsaved Received
        assert payload.message.message_id == "c"
        Order.objects.create(reference="autocommitted")
        payload.save()

    dlq = stomp_consumer(f"/queue/DLQ.{queue_name}")
    subscribe(careless, f"/queue/{queue_name}")
    send_raw(stomp_broker, f"/queue/{queue_name}", '{"ref": "x"}', {"dop-msg-id": "c"})

    [dead] = dlq.wait_for(1)
    assert (
        "must be called inside transaction.atomic()"
        in (dead.headers["pgoutbox-dead-letter-reason"])
    )
    assert not ReceivedMessage.objects.exists()


def test_a_business_integrity_error_after_save_is_not_taken_for_already_recorded(
    subscribe, stomp_broker, stomp_consumer, queue_name
):
    """Another consumer recorded the same message id; this consumer's callback fails on its
    own unique key after save(): that is its failure (dead letter), not a duplicate."""
    ReceivedMessage.objects.create(consumer="another-queue", message_id="i-1")
    existing = Order.objects.create(reference="existing")

    def duplicate_key(payload: Payload) -> None:
        with transaction.atomic():
            payload.save()
            Order.objects.create(id=existing.id, reference="clash")

    dlq = stomp_consumer(f"/queue/DLQ.{queue_name}")
    subscribe(duplicate_key, f"/queue/{queue_name}")
    send_raw(stomp_broker, f"/queue/{queue_name}", '{"ref": "i"}', {"dop-msg-id": "i-1"})

    [dead] = dlq.wait_for(1)
    assert "IntegrityError" in dead.headers["pgoutbox-dead-letter-reason"]
    assert list(ReceivedMessage.objects.values_list("consumer", flat=True)) == ["another-queue"]


def test_a_message_this_consumer_recorded_concurrently_is_acked_without_effect(
    subscribe, stomp_broker, stomp_consumer, queue_name
):
    """The pre-check missed the row (written after it, e.g. by a competing consumer):
    save() raises AlreadyReceived, the callback's writes roll back, the message is acked."""
    calls = Calls()

    def late_duplicate(payload: Payload) -> None:
        calls.add(payload)
        ReceivedMessage.objects.create(consumer=queue_name, message_id=payload.message_id)
        with transaction.atomic():
            Order.objects.create(reference="twice")
            payload.save()

    dlq = stomp_consumer(f"/queue/DLQ.{queue_name}")
    subscribe(late_duplicate, f"/queue/{queue_name}")
    send_raw(stomp_broker, f"/queue/{queue_name}", '{"ref": "d"}', {"dop-msg-id": "d-1"})

    calls.wait_for(1)
    assert dlq.quiet_for(1.0) == []
    assert not Order.objects.exists()
    assert len(calls.payloads) == 1


def test_the_dlq_has_no_queue_arguments_even_when_the_queue_expires(
    subscribe, stomp_broker, queue_name, caplog
):
    """The consumer's queue has ``x-expires`` (allowed on an exchange queue, which only the
    consumer declares); its DLQ must not inherit it, or dead letters would vanish with it."""
    destination = f"/exchange/amq.direct/{queue_name}"

    def reject(payload: Payload) -> None:
        payload.nack()

    subscribe(
        reject,
        destination,
        queue_name,
        consumer_queue_headers=(("durable", "true"), ("x-expires", "600000")),
    )
    send_raw(stomp_broker, destination, '{"ref": "e"}')
    assert wait_until(lambda: "dead-lettered" in caplog.text)  # logged once confirmed
    dlq = f"/queue/DLQ.{queue_name}"
    probe = StompProducer(stomp_broker)
    try:
        probe.conn.subscribe(
            dlq, id="probe", ack="client-individual", headers={"x-expires": "600000"}
        )
        probe.send(dlq, "after the probe")  # the probe's ERROR (if any) is seen by now
    except AssertionError as exc:
        assert "inequivalent arg 'x-expires'" in str(exc)
        assert "received the value '600000'" in str(exc) and "current is none" in str(exc)
    else:
        raise AssertionError("the DLQ accepted x-expires: it was declared with it")
    finally:
        probe.close()


def test_the_callback_runs_with_the_messages_correlation_id(subscribe, stomp_broker, queue_name):
    """With request_id_django_log installed, an event published by the callback carries the
    incoming ``dop-correlation-id`` on (saga chains)."""
    request_id = pytest.importorskip("request_id_django_log")
    seen: list[str] = []

    def chain(payload: Payload) -> None:
        with transaction.atomic():
            Invoice.objects.create(reference="saga")
            payload.save()
        seen.append(request_id.local_threading.request_id)

    subscribe(chain, f"/queue/{queue_name}")
    send_raw(stomp_broker, f"/queue/{queue_name}", '{"ref": "s"}', DOP_HEADERS)
    assert wait_until(ReceivedMessage.objects.exists)
    assert seen == [DOP_HEADERS["dop-correlation-id"]]
    headers = [e.headers for e in OutboxEvent.objects.all()]
    assert headers and {h["dop-correlation-id"] for h in headers} == {
        DOP_HEADERS["dop-correlation-id"]
    }


def test_migration_0005_down_keeps_one_row_per_message_id_and_up_restores_the_key():
    ReceivedMessage.objects.create(consumer="a", message_id="m")
    ReceivedMessage.objects.create(consumer="b", message_id="m")
    ReceivedMessage.objects.create(consumer="a", message_id="n")
    try:
        call_command("migrate", "pgoutbox", "0003", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("SELECT message_id FROM pgoutbox_received ORDER BY id")
            assert [r[0] for r in cursor.fetchall()] == ["m", "n"]
    finally:
        call_command("migrate", "pgoutbox", verbosity=0)
    assert sorted(ReceivedMessage.objects.values_list("consumer", "message_id")) == [
        ("", "m"),
        ("", "n"),
    ]
    ReceivedMessage.objects.create(consumer="c", message_id="m")
    with pytest.raises(IntegrityError), transaction.atomic():
        ReceivedMessage.objects.create(consumer="c", message_id="m")


def test_competing_consumers_of_one_queue_run_a_duplicate_once(subscribe, producer, queue_name):
    """Two consumers of one queue get the two copies of a message at the same time: the
    second inbox insert waits for the first transaction and finds the id; its callback's
    writes roll back and its copy is acked."""
    calls = Calls()

    def slow(payload: Payload) -> None:
        calls.add(payload)
        with transaction.atomic():
            payload.save()
            time.sleep(0.5)
            Order.objects.create(reference=payload.body["ref"])

    destination = f"/queue/{queue_name}"
    subscribe(slow, destination)
    subscribe(slow, destination)
    producer.send(destination, '{"ref": "once"}', {"dop-msg-id": "twin"})
    producer.send(destination, '{"ref": "once"}', {"dop-msg-id": "twin"})

    assert len(calls.wait_for(2)) == 2  # both callbacks ran, concurrently
    assert wait_until(lambda: ReceivedMessage.objects.count() == 1)
    time.sleep(1.0)
    assert list(Order.objects.values_list("reference", flat=True)) == ["once"]
    assert len(calls.payloads) == 2


def test_a_queue_declared_by_django_outbox_pattern_is_named_and_readable_as_it_is(
    subscribe, stomp_broker, producer, queue_name, caplog
):
    """django-outbox-pattern's consumer declared the queue with dead-letter arguments: the
    consumer's own declaration is refused, and it says what to do; through /amq/queue/ it
    reads the queue as it is."""
    old = StompProducer(stomp_broker)
    try:
        old.conn.subscribe(
            f"/exchange/amq.direct/{queue_name}",
            id="old",
            ack="client",
            headers={
                "durable": "true",
                "auto-delete": "false",
                "x-queue-name": queue_name,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": f"DLQ.{queue_name}",
                "receipt": "old-subscribed",
            },
        )
        assert wait_until(lambda: "old-subscribed" in old.receipts)
    finally:
        old.close()
    settings = dataclasses.replace(get_settings(), reconnect_backoff_max=0.5)
    refused = Subscriber(
        record(Calls()), f"/exchange/amq.direct/{queue_name}", queue_name, settings=settings
    )
    thread = SubscriberThread(refused)
    thread.thread.start()
    assert wait_until(lambda: "exists with other arguments" in caplog.text)
    thread.stop()

    calls = Calls()
    subscribe(record(calls), f"/amq/queue/{queue_name}")
    producer.send(f"/exchange/amq.direct/{queue_name}", '{"ref": "old-queue"}')
    assert [p.body["ref"] for p in calls.wait_for(1)] == ["old-queue"]
