"""The AMQP transport against the real RabbitMQ: confirmed means delivered, unroutable means
that event's failure (never confirmed and dropped), and the relay records it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiormq
import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

import pgoutbox
from pgoutbox.conf import get_settings, parse_settings
from pgoutbox.errors import TransportUnavailable
from pgoutbox.models import OutboxEvent
from pgoutbox.transports.amqp import AmqpTransport
from pgoutbox.transports.base import Message
from tests.support.broker_fixtures import TRANSPORTS
from tests.support.services import url_address
from tests.support.tls import TlsTerminator

pytestmark = pytest.mark.django_db(transaction=True)


def _messages(destination, count, start=0):
    return [
        Message(n, uuid.uuid4(), destination, json.dumps({"n": n}).encode(), {"x-n": str(n)})
        for n in range(start, start + count)
    ]


@pytest.fixture
def transport(amqp_broker):
    transport = AmqpTransport(parse_settings({"AMQP_URL": amqp_broker}))
    yield transport
    transport.close()


@pytest.fixture
def fresh_queue(amqp_broker):
    """A queue name nobody uses yet; the queue is deleted at teardown if it was created."""
    name = f"pgoutbox-test-{uuid.uuid4().hex[:12]}"
    yield name

    async def delete():
        connection = await aiormq.connect(amqp_broker)
        channel = await connection.channel()
        await channel.queue_delete(name)
        await connection.close()

    asyncio.run(delete())


def test_a_batch_to_a_new_queue_is_confirmed_and_kept_until_a_consumer_comes(
    transport, fresh_queue, stomp_consumer
):
    messages = _messages(f"/queue/{fresh_queue}", 300)
    outcome = transport.publish_batch(messages)
    assert outcome.confirmed == {m.event_id for m in messages}
    assert not outcome.rejected and not outcome.unconfirmed and outcome.failure is None

    # The queue was declared durable, as a STOMP SEND declares it: a STOMP subscriber that
    # comes later gets every message, with its id, headers and persistence.
    consumer = stomp_consumer(f"/queue/{fresh_queue}")
    received = consumer.wait_for(300)
    assert [m.message_id for m in received] == [str(m.message_id) for m in messages]
    first = received[0]
    assert first.headers["x-n"] == "0"
    assert first.headers["persistent"] == "true"
    assert first.headers["amqp-message-id"] == str(messages[0].message_id)


def test_unroutable_and_unknown_destinations_are_rejected_the_rest_confirmed(
    transport, stomp_consumer
):
    consumer = stomp_consumer()  # a /topic/... with a bound subscriber: routable
    missing = f"pgoutbox-missing-{uuid.uuid4().hex[:12]}"
    good = _messages(consumer.destination, 50)
    bad = [
        Message(1001, uuid.uuid4(), f"/amq/queue/{missing}", b"x"),  # no such queue
        Message(1002, uuid.uuid4(), f"/topic/{missing}", b"x"),  # nobody subscribed
        Message(1003, uuid.uuid4(), f"/exchange/{missing}/key", b"x"),  # no such exchange
        Message(1004, uuid.uuid4(), "/temp-queue/x", b"x"),  # no AMQP meaning
        Message(1005, uuid.uuid4(), f"/queue/amq.{missing}", b"x"),  # may not be declared
    ]
    outcome = transport.publish_batch([*good[:25], *bad, *good[25:]])

    assert outcome.confirmed == {m.event_id for m in good}
    assert set(outcome.rejected) == {1001, 1002, 1003, 1004, 1005}
    assert "312 NO_ROUTE" in outcome.rejected[1001]
    assert "312 NO_ROUTE" in outcome.rejected[1002]
    assert f"no exchange '{missing}'" in outcome.rejected[1003]
    assert "/temp-queue/x" in outcome.rejected[1004]
    assert "ACCESS_REFUSED" in outcome.rejected[1005]
    assert not outcome.unconfirmed and outcome.failure is None
    assert len(consumer.wait_for(50)) == 50

    # The connection survived the refusals: the next batch goes through on it.
    again = transport.publish_batch(_messages(consumer.destination, 10, start=100))
    assert len(again.confirmed) == 10


def test_an_exchange_deleted_while_connected_fails_the_batch_then_that_event_until_back(
    transport, amqp_broker
):
    exchange = f"pgoutbox-test-{uuid.uuid4().hex[:12]}"
    queue = f"{exchange}-q"

    async def admin(*steps):
        connection = await aiormq.connect(amqp_broker)
        channel = await connection.channel()
        for step in steps:
            await step(channel)
        await connection.close()

    async def create(channel):
        await channel.exchange_declare(exchange, exchange_type="direct", auto_delete=False)
        await channel.queue_declare(queue, auto_delete=False)
        await channel.queue_bind(queue, exchange, routing_key="k")

    async def delete_exchange(channel):
        await channel.exchange_delete(exchange)

    async def delete_queue(channel):
        await channel.queue_delete(queue)

    asyncio.run(admin(create))
    try:
        destination = f"/exchange/{exchange}/k"
        assert len(transport.publish_batch(_messages(destination, 3)).confirmed) == 3
        asyncio.run(admin(delete_exchange))
        # The exchange was checked on this connection: the broker closes the channel.
        lost = transport.publish_batch(_messages(destination, 3, start=10))
        assert lost.unconfirmed == {10, 11, 12} and "no exchange" in lost.failure
        # Reconnected, checked again: now it is that event's failure, the others go through.
        outcome = transport.publish_batch(
            [*_messages(destination, 1, start=20), *_messages(f"/queue/{queue}", 2, start=21)]
        )
        assert f"no exchange '{exchange}'" in outcome.rejected[20]
        assert outcome.confirmed == {21, 22}
        # Created again: the event's next try goes through on the same connection.
        asyncio.run(admin(create))
        retried = transport.publish_batch(_messages(destination, 1, start=20))
    finally:
        asyncio.run(admin(delete_exchange, delete_queue))
    assert retried.confirmed == {20}


def test_an_unreachable_broker_or_wrong_credentials_raise_transport_unavailable(amqp_broker):
    for url in (
        "amqp://guest:guest@127.0.0.1:1/%2F",
        amqp_broker.replace("guest:guest", "guest:wrong-password"),
    ):
        transport = AmqpTransport(parse_settings({"AMQP_URL": url, "STOMP_CONNECT_TIMEOUT": 2}))
        with pytest.raises(TransportUnavailable, match="cannot connect to the AMQP broker"):
            transport.publish_batch(_messages("/queue/x", 1))
        transport.close()


def test_relay_over_amqp_delivers_and_records_unroutable_events_as_failures(
    amqp_broker, stomp_consumer, relay_thread
):
    consumer = stomp_consumer()
    unroutable = f"/amq/queue/pgoutbox-missing-{uuid.uuid4().hex[:12]}"
    overrides = {
        "TRANSPORT": TRANSPORTS["amqp"],
        "AMQP_URL": amqp_broker,
        "MAX_ATTEMPTS": 2,
        "RETRY_BACKOFF_BASE": 0.05,
        "RETRY_BACKOFF_MAX": 0.1,
    }
    with override_settings(PGOUTBOX={**settings.PGOUTBOX, **overrides}):
        assert get_settings().transport == TRANSPORTS["amqp"]
        relay_thread()
        with transaction.atomic():
            good = [pgoutbox.send(consumer.destination, {"n": n}) for n in range(20)]
            lost_cause = pgoutbox.send(unroutable, {"n": "unroutable"})

        received = consumer.wait_for(20)
        assert {m.message_id for m in received} == {str(m) for m in good}
        assert received[0].headers["content-type"] == "application/json"
        deadline = time.monotonic() + 10
        while OutboxEvent.objects.filter(status="pending").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    [event] = OutboxEvent.objects.all()
    assert event.message_id == lost_cause
    assert (event.status, event.attempts) == ("dead", 2)
    assert "NO_ROUTE" in event.last_error


@pytest.fixture(scope="module")
def amqp_tls(tmp_path_factory, amqp_broker):
    """stunnel terminating TLS in front of RabbitMQ's AMQP port, with its own CA."""
    terminator = TlsTerminator.start(
        tmp_path_factory.mktemp("amqp-tls"), url_address(amqp_broker, 5672)
    )
    yield terminator
    terminator.stop()


def test_amqps_verifies_the_broker_with_the_given_ca(amqp_tls, stomp_consumer):
    consumer = stomp_consumer()
    url = f"amqps://guest:guest@localhost:{amqp_tls.port}/%2F"
    trusted = AmqpTransport(
        parse_settings({"AMQP_URL": url, "AMQP_SSL_CA_CERTS": str(amqp_tls.cert)})
    )
    try:
        outcome = trusted.publish_batch(_messages(consumer.destination, 5))
    finally:
        trusted.close()
    assert len(outcome.confirmed) == 5
    assert len(consumer.wait_for(5)) == 5
    assert amqp_tls.accepted_connections() >= 1

    # Without the CA, the self-signed broker is refused before any credentials are sent.
    untrusted = AmqpTransport(parse_settings({"AMQP_URL": url, "STOMP_CONNECT_TIMEOUT": 3}))
    with pytest.raises(TransportUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        untrusted.publish_batch(_messages(consumer.destination, 1))
    untrusted.close()
