"""Committed events reach a real STOMP subscriber; rolled-back ones never do."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

import pgoutbox
from pgoutbox.models import OutboxEvent
from tests.app.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


def test_committed_event_arrives_intact_and_its_row_is_deleted(stomp_consumer, relay_thread):
    consumer = stomp_consumer()
    relay_thread()
    with transaction.atomic():
        Order.objects.create(reference="A-1")
        message_id = pgoutbox.send(
            consumer.destination, {"order": "A-1", "total": 12.5}, headers={"x-tenant": "acme"}
        )

    [received] = consumer.wait_for(1)
    assert json.loads(received.body) == {"order": "A-1", "total": 12.5}
    assert received.headers["x-tenant"] == "acme"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["persistent"] == "true"  # survives a broker restart after the receipt
    assert received.message_id == str(message_id)
    assert consumer.quiet_for(0.5) == [received]
    assert not OutboxEvent.objects.exists()


def test_rolled_back_event_is_never_sent(stomp_consumer, relay_thread):
    consumer = stomp_consumer()
    relay_thread()
    with pytest.raises(RuntimeError), transaction.atomic():
        pgoutbox.send(consumer.destination, "rolled back")
        raise RuntimeError("business rule failed")
    with transaction.atomic():
        pgoutbox.send(consumer.destination, "committed")

    consumer.wait_for(1)
    bodies = [m.body for m in consumer.quiet_for(1.0)]
    assert bodies == [b"committed"]


def test_str_and_bytes_bodies_keep_their_bytes(stomp_consumer, relay_thread):
    consumer = stomp_consumer()
    relay_thread()
    pgoutbox.send(consumer.destination, "héllo")
    pgoutbox.send(consumer.destination, b"\x00\x01binary\xff")

    received = consumer.wait_for(2)
    assert sorted(m.body for m in received) == sorted([b"\x00\x01binary\xff", "héllo".encode()])
    by_body = {m.body: m.headers["content-type"] for m in received}
    assert by_body["héllo".encode()] == "text/plain;charset=utf-8"
    assert by_body[b"\x00\x01binary\xff"] == "application/octet-stream"


def test_events_written_while_no_listener_runs_are_delivered_on_start(stomp_consumer, relay_thread):
    consumer = stomp_consumer()
    ids = {str(pgoutbox.send(consumer.destination, {"n": n})) for n in range(25)}
    assert consumer.quiet_for(0.5) == []

    relay_thread(poll_interval=60)  # a poll cannot explain delivery: the start-up drain must
    received = consumer.wait_for(25)
    assert {m.message_id for m in received} == ids


def test_notification_wakes_listener_long_before_the_poll(stomp_consumer, relay_thread):
    consumer = stomp_consumer()
    relay_thread(poll_interval=60)
    consumer.quiet_for(0.3)  # past the start-up drain
    pgoutbox.send(consumer.destination, "pushed")
    assert [m.body for m in consumer.wait_for(1, timeout=5)] == [b"pushed"]


def test_poll_only_mode_still_delivers(stomp_consumer, relay_thread):
    consumer = stomp_consumer()
    relay_thread(poll_interval=0.5)
    consumer.quiet_for(0.3)
    with transaction.atomic():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL pgoutbox.notify = 'off'")
        pgoutbox.send(consumer.destination, "polled")
    assert [m.body for m in consumer.wait_for(1, timeout=5)] == [b"polled"]


def test_two_listeners_deliver_every_event_exactly_once(stomp_consumer, relay_thread):
    consumer = stomp_consumer()
    relay_thread(batch_size=20)
    relay_thread(batch_size=20)
    ids = set()
    for n in range(300):
        with transaction.atomic():
            ids.add(str(pgoutbox.send(consumer.destination, {"n": n})))

    consumer.wait_for(300, timeout=30)
    received = consumer.quiet_for(1.0)
    assert sorted(m.message_id for m in received) == sorted(ids)
    assert not OutboxEvent.objects.exists()


def test_one_listener_publishes_in_id_order(stomp_consumer, relay_thread):
    consumer = stomp_consumer()
    ids = [str(pgoutbox.send(consumer.destination, {"n": n})) for n in range(60)]
    relay_thread(batch_size=25)
    assert [m.message_id for m in consumer.wait_for(60)] == ids


def test_listener_for_one_stream_wakes_on_it_and_leaves_the_others(stomp_consumer, relay_thread):
    consumer = stomp_consumer()
    relay_thread(streams=["billing"], poll_interval=60)
    consumer.quiet_for(0.3)
    other = pgoutbox.send(consumer.destination, "other stream", stream="shipping")
    wanted = pgoutbox.send(consumer.destination, "billing", stream="billing")

    assert [m.message_id for m in consumer.wait_for(1, timeout=5)] == [str(wanted)]
    assert len(consumer.quiet_for(0.5)) == 1
    assert list(OutboxEvent.objects.values_list("message_id", flat=True)) == [other]


def test_headers_with_stomp_special_characters_arrive_unchanged(stomp_consumer, relay_thread):
    # SEND frames are encoded by pgoutbox (a batch per write): STOMP 1.2 escaping of ':',
    # newline, carriage return and backslash, in names and values, must round-trip.
    consumer = stomp_consumer()
    relay_thread()
    odd = {"x-odd": "a:b\nc\\d\re", "x:named": "v:1", "x-utf8": "žluťoučký kůň"}
    pgoutbox.send(consumer.destination, {"n": 1}, headers=odd)

    [received] = consumer.wait_for(1)
    assert {name: received.headers[name] for name in odd} == odd
    assert json.loads(received.body) == {"n": 1}


def test_a_batch_larger_than_one_write_arrives_whole_and_in_order(stomp_consumer, relay_thread):
    consumer = stomp_consumer()
    with transaction.atomic():
        for n in range(150):  # frames go out 64 per write: three writes, the last one partial
            pgoutbox.send(consumer.destination, {"n": n})
    relay_thread()

    received = consumer.wait_for(150)
    assert [json.loads(m.body)["n"] for m in received] == list(range(150))
    assert consumer.quiet_for(0.5) == received
    assert not OutboxEvent.objects.exists()
