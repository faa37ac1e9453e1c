"""``send(..., compat="outbox-pattern")`` and django-outbox-pattern's ``Published.objects.create``:
consumers still running django-outbox-pattern during a gradual switch deduplicate pgoutbox's
messages on their ``dop-msg-id``."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import transaction

import pgoutbox
from pgoutbox.compat.outbox_pattern.models import Published
from pgoutbox.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)


def test_outbox_pattern_headers_carry_the_message_id(relay_thread, stomp_consumer):
    consumer = stomp_consumer()
    relay_thread()
    message_id = pgoutbox.send(consumer.destination, {"n": 1}, compat="outbox-pattern")
    [received] = consumer.wait_for(1)
    assert received.headers["dop-msg-id"] == received.message_id == str(message_id)
    assert received.headers["dop-msg-destination"] == consumer.destination


def test_an_unknown_compat_is_refused_before_anything_is_written():
    with pytest.raises(ValueError, match="compat must be None or one of"):
        pgoutbox.send("/queue/pgoutbox-compat", "x", compat="jaiminho-ish")
    assert not OutboxEvent.objects.exists()


def test_published_objects_create_records_the_message_in_the_callers_transaction(
    relay_thread, stomp_consumer
):
    """django-outbox-pattern's README: ``Published.objects.create(destination=..., body=...)``
    inside ``transaction.atomic()`` next to the business writes."""
    consumer = stomp_consumer()
    relay_thread()
    with pytest.raises(RuntimeError), transaction.atomic():
        Published.objects.create(destination=consumer.destination, body={"rolled": "back"})
        raise RuntimeError("the business transaction fails")
    given = uuid.uuid4()
    with transaction.atomic():
        published = Published.objects.create(
            id=given, destination=consumer.destination, body={"some": "data"}, headers={"x-a": "b"}
        )
    [received] = consumer.wait_for(1)
    assert consumer.quiet_for(0.3) == [received]  # the rolled-back one never comes
    assert published.id == given
    assert received.headers["dop-msg-id"] == received.message_id == str(given)
    assert (received.headers["x-a"], json.loads(received.body)) == ("b", {"some": "data"})


def test_published_version_is_appended_to_the_destination():
    published = Published(destination="/queue/orders", body=[1], version="v2")
    published.save()
    assert published.destination == "/queue/orders.v2"
    assert OutboxEvent.objects.get().destination == "/queue/orders.v2"
    with pytest.raises(RuntimeError, match="already recorded"):
        published.save()
