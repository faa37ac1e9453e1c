"""django-outbox-pattern's factories: a direct producer with receipts, a background consumer."""

from __future__ import annotations

import socket
import threading
import uuid
from types import SimpleNamespace

import pytest
from django.db import transaction

from pgoutbox.compat.outbox_pattern.factories import factory_consumer, factory_producer
from pgoutbox.compat.outbox_pattern.payloads import Payload
from pgoutbox.errors import InvalidEventError, TransportError, TransportUnavailable
from pgoutbox.models import OutboxEvent, ReceivedMessage

pytestmark = pytest.mark.django_db(transaction=True)


def test_send_event_publishes_at_once_with_dop_headers(stomp_consumer):
    consumer = stomp_consumer()
    with factory_producer() as producer:
        sent = producer.send_event(
            destination=consumer.destination, body={"a": 1}, headers={"x-k": "v"}
        )
        producer.send_event("plain", consumer.destination)  # the original's order: body first
    assert sent == 0  # failed attempts before the broker's receipt

    first, second = consumer.wait_for(2)
    assert (first.body, second.body) == (b'{"a": 1}', b'"plain"')  # JSON, as the original sends
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-k"] == "v"
    assert first.headers["dop-msg-id"] == first.headers["pgoutbox-message-id"]
    assert first.headers["dop-msg-destination"] == consumer.destination
    assert not OutboxEvent.objects.exists()  # never through the outbox table


def test_send_takes_an_object_with_body_and_destination(stomp_consumer):
    consumer = stomp_consumer()
    message = SimpleNamespace(body={"id": 7}, destination=consumer.destination)
    with factory_producer() as producer:
        assert producer.send(message, headers={"x-from": "send"}) == 0
    [received] = consumer.wait_for(1)
    assert (received.body, received.headers["x-from"]) == (b'{"id": 7}', "send")


def test_send_event_raises_when_the_broker_does_not_confirm(stomp_broker):
    missing = f"/exchange/pgoutbox-missing-{uuid.uuid4().hex}/key"
    with factory_producer() as producer:
        with pytest.raises(TransportError, match="did not confirm"):
            producer.send_event({"a": 1}, missing)
        with pytest.raises(InvalidEventError, match="destination must start with '/'"):
            producer.send_event({"a": 1}, "queue/x")
        with pytest.raises(InvalidEventError, match="'receipt' is set by pgoutbox"):
            producer.send_event({"a": 1}, "/queue/x", receipt="mine")


def test_start_raises_when_the_broker_is_unreachable(settings):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.PGOUTBOX = {**settings.PGOUTBOX, "STOMP_HOSTS": [("127.0.0.1", port)]}
    with pytest.raises(TransportUnavailable), factory_producer():
        pass


def test_factory_consumer_hands_payloads_to_the_callback(stomp_broker, settings):
    queue = f"pgoutbox-test-{uuid.uuid4().hex[:12]}"
    destination = f"/exchange/amq.direct/{queue}"
    settings.PGOUTBOX = {
        **settings.PGOUTBOX,
        "CONSUMER_QUEUE_HEADERS": {"durable": "true", "x-expires": "600000"},
    }
    seen: list[Payload] = []
    arrived = threading.Event()

    def callback(payload: Payload) -> None:
        with transaction.atomic():
            payload.save()
        seen.append(payload)
        arrived.set()

    consumer = factory_consumer()
    consumer.start(callback, destination, queue)
    try:
        assert consumer.is_connected()
        with factory_producer() as producer:
            producer.send_event({"n": 1}, destination)
        assert arrived.wait(10)
    finally:
        consumer.stop()
    assert not consumer.is_connected()
    assert [p.body for p in seen] == [{"n": 1}]
    assert ReceivedMessage.objects.filter(message_id=seen[0].message_id).exists()
