"""The JetStream transport against the real NATS server: PubAck means stored, a republished
message id is stored once, no stream for a subject is that event's failure."""

from __future__ import annotations

import asyncio
import time
import uuid

import nats
import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

import pgoutbox
from pgoutbox.conf import parse_settings
from pgoutbox.errors import TransportUnavailable
from pgoutbox.models import OutboxEvent
from pgoutbox.transports.base import Message
from pgoutbox.transports.nats import JetStreamTransport
from tests.support.broker_fixtures import TRANSPORTS

pytestmark = pytest.mark.django_db(transaction=True)


def _messages(destination, count, start=0):
    return [
        Message(n, uuid.uuid4(), destination, f"body {n}".encode(), {"x-n": str(n)})
        for n in range(start, start + count)
    ]


@pytest.fixture
def transport(nats_broker):
    transport = JetStreamTransport(parse_settings({"NATS_URL": nats_broker}))
    yield transport
    transport.close()


def test_a_batch_is_acked_stored_and_a_republished_batch_is_stored_once(transport, jetstream_sink):
    sink = jetstream_sink()
    messages = _messages(sink.destination, 300)
    first = transport.publish_batch(messages)
    assert first.confirmed == {m.event_id for m in messages}
    assert not first.rejected and not first.unconfirmed

    # What a killed relay does: publish the same events again. Acked, not stored twice.
    again = transport.publish_batch(messages)
    assert again.confirmed == first.confirmed
    assert sink.wait_for_count(300, timeout=10) == 300
    assert sink.quiet_for(0.3) and sink.stored() == 300
    stored = sink.snapshot()
    assert [d.message_id for d in stored] == [str(m.message_id) for m in messages]
    assert stored[7].body == b"body 7"


def test_no_stream_and_bad_subjects_are_rejected_the_rest_acked(transport, jetstream_sink):
    sink = jetstream_sink()
    good = _messages(sink.destination, 40)
    bad = [
        Message(1001, uuid.uuid4(), f"/pgoutbox-nobody/{uuid.uuid4().hex}", b"x"),
        Message(1002, uuid.uuid4(), "/a//b", b"x"),
        Message(1003, uuid.uuid4(), sink.destination, b"x", {"bad name": "x"}),
    ]
    outcome = transport.publish_batch([*good[:20], *bad, *good[20:]])
    assert outcome.confirmed == {m.event_id for m in good}
    assert set(outcome.rejected) == {1001, 1002, 1003}
    assert "no responders" in outcome.rejected[1001]
    assert "'a..b'" in outcome.rejected[1002]
    assert not outcome.unconfirmed and outcome.failure is None
    assert sink.wait_for_count(40, timeout=10) == 40


def test_a_message_over_the_server_max_payload_is_rejected_not_retried_forever(
    transport, jetstream_sink, nats_broker
):
    sink = jetstream_sink()

    async def max_payload():
        client = await nats.connect(nats_broker)
        limit = client.max_payload
        await client.close()
        return limit

    huge = Message(99, uuid.uuid4(), sink.destination, b"x" * (asyncio.run(max_payload()) + 1))
    good = _messages(sink.destination, 5)
    outcome = transport.publish_batch([huge, *good])
    assert outcome.confirmed == {m.event_id for m in good}
    assert "MaxPayload" in outcome.rejected[99]
    assert not outcome.unconfirmed


def test_a_stream_that_refuses_a_message_rejects_that_event(transport, nats_broker):
    subject = f"pgoutbox-full.{uuid.uuid4().hex[:12]}"
    stream = f"PGOUTBOX_FULL_{uuid.uuid4().hex[:12]}"

    async def admin(create):
        client = await nats.connect(nats_broker)
        js = client.jetstream()
        if create:
            await js.add_stream(name=stream, subjects=[subject], max_msgs=1, discard="new")
        else:
            await js.delete_stream(stream)
        await client.close()

    asyncio.run(admin(True))
    try:
        outcome = transport.publish_batch(_messages("/" + subject.replace(".", "/"), 2))
    finally:
        asyncio.run(admin(False))
    assert len(outcome.confirmed) == 1
    [reason] = outcome.rejected.values()
    assert "JetStream refused the message" in reason and "maximum messages" in reason


def test_an_unreachable_server_raises_transport_unavailable():
    transport = JetStreamTransport(
        parse_settings({"NATS_URL": "nats://127.0.0.1:1", "STOMP_CONNECT_TIMEOUT": 1})
    )
    with pytest.raises(TransportUnavailable, match="cannot connect to NATS"):
        transport.publish_batch(_messages("/a", 1))
    transport.close()


def test_relay_over_jetstream_stores_events_and_records_no_stream_as_failure(
    nats_broker, jetstream_sink, relay_thread
):
    sink = jetstream_sink()
    overrides = {
        "TRANSPORT": TRANSPORTS["jetstream"],
        "NATS_URL": nats_broker,
        "MAX_ATTEMPTS": 2,
        "RETRY_BACKOFF_BASE": 0.05,
        "RETRY_BACKOFF_MAX": 0.1,
    }
    with override_settings(PGOUTBOX={**settings.PGOUTBOX, **overrides}):
        relay_thread()
        with transaction.atomic():
            good = [pgoutbox.send(sink.destination, {"n": n}) for n in range(20)]
            stray = pgoutbox.send(f"/pgoutbox-nobody/{uuid.uuid4().hex}", {"n": "stray"})
        assert not sink.wait_for_ids({str(m) for m in good}, timeout=10)
        deadline = time.monotonic() + 10
        while OutboxEvent.objects.filter(status="pending").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    [event] = OutboxEvent.objects.all()
    assert event.message_id == stray
    assert (event.status, event.attempts) == ("dead", 2)
    assert "no responders" in event.last_error
    assert sink.stored() == 20
