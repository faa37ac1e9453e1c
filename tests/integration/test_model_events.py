"""``@publish([Config(...)])``: django-outbox-pattern's model events, written in the save's
transaction and delivered by a running relay."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction

import pgoutbox
from pgoutbox.errors import SerializationError
from pgoutbox.models import OutboxEvent
from tests.app.models import CreditNote, Invoice, Order

pytestmark = pytest.mark.django_db(transaction=True)

VERSIONED = "/topic/pgoutbox-test-invoice.v1"
SUMMARY = "/topic/pgoutbox-test-invoice-summary"
REF_ONLY = "/topic/pgoutbox-test-invoice-ref"


def _reference() -> str:
    return f"inv-{uuid.uuid4().hex[:12]}"


def _bodies_for(consumer: Any, count: int, reference: str) -> list[Any]:
    """Messages of this test only (other runs may share the broker's topics)."""
    consumer.wait_for(count)
    mine = []
    for message in consumer.quiet_for(0.3):
        body = json.loads(message.body)
        if reference.upper() in (body.get("reference"), body.get("ref")):
            mine.append((message, body))
    return mine


def test_save_publishes_one_event_per_config_with_body_and_dop_headers(
    stomp_consumer, relay_thread
):
    versioned, summary, ref_only = (stomp_consumer(d) for d in (VERSIONED, SUMMARY, REF_ONLY))
    relay_thread()
    reference = _reference()
    with transaction.atomic():
        invoice = Invoice.objects.create(reference=reference, amount=Decimal("12.50"))

    [(message, body)] = _bodies_for(versioned, 1, reference)
    assert body == {
        "id": invoice.pk,
        "reference": reference.upper(),
        "amount": "12.50",
        "issued_at": None,
    }
    headers = message.headers
    assert headers["dop-msg-id"] == headers["pgoutbox-message-id"]
    assert headers["dop-msg-destination"] == VERSIONED
    assert headers["dop-msg-type"] == "Published"
    assert headers["dop-msg-sent-time"]
    uuid.UUID(headers["dop-correlation-id"])
    assert headers["content-type"] == "application/json"

    [(_, summary_body)] = _bodies_for(summary, 1, reference)
    assert summary_body == {"id": invoice.pk, "ref": reference.upper(), "amount": "12.50"}
    [(_, ref_body)] = _bodies_for(ref_only, 1, reference)
    assert ref_body == {"id": invoice.pk, "reference": reference.upper()}


def test_every_save_publishes_update_included(stomp_consumer, relay_thread):
    consumer = stomp_consumer(VERSIONED)
    relay_thread()
    reference = _reference()
    invoice = Invoice.objects.create(reference=reference)
    invoice.amount = Decimal("3.00")
    invoice.save()

    received = _bodies_for(consumer, 2, reference)
    # the in-memory instance is serialized, as django-outbox-pattern does: Decimal("0") is "0"
    assert [body["amount"] for _, body in received] == ["0", "3.00"]
    assert len({m.headers["dop-msg-id"] for m, _ in received}) == 2


def test_rolled_back_save_writes_no_event():
    with pytest.raises(RuntimeError), transaction.atomic():
        Invoice.objects.create(reference=_reference())
        raise RuntimeError("business rule failed")
    assert not Invoice.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_event_rows_are_written_with_the_model_row():
    invoice = Invoice.objects.create(reference=_reference())
    events = list(OutboxEvent.objects.all())
    assert sorted(e.destination for e in events) == sorted([VERSIONED, SUMMARY, REF_ONLY])
    assert all(e.headers["dop-msg-id"] == str(e.message_id) for e in events)
    assert invoice.reference.isupper()  # the class's own save() ran


def test_user_save_override_still_runs():
    invoice = Invoice(reference="lower")
    invoice.save()
    invoice.refresh_from_db()
    assert invoice.reference == "LOWER"


def test_subclass_of_decorated_model_saves_once_without_recursion():
    note = CreditNote.objects.create(reference=_reference(), reason="damaged")
    note.reason = "returned"
    note.save()
    assert CreditNote.objects.get().reason == "returned"
    # one event per Config per save: 3 configs, 2 saves
    assert OutboxEvent.objects.count() == 6
    versioned = [e for e in OutboxEvent.objects.all() if e.destination == VERSIONED]
    assert [json.loads(bytes(e.body))["id"] for e in versioned] == [note.pk, note.pk]


def _order_proxy(name: str, config: pgoutbox.Config) -> type[models.Model]:
    meta = type("Meta", (), {"proxy": True, "app_label": "app"})
    attrs = {"__module__": __name__, "Meta": meta, "when": lambda self: {"at": object()}}
    return pgoutbox.publish([config])(type(name, (Order,), attrs))


def test_misspelled_serializer_is_refused_when_the_class_is_decorated():
    with pytest.raises(ImproperlyConfigured, match="'whne'"):
        _order_proxy("MisspelledOrder", pgoutbox.Config("/topic/x", serializer="whne"))


def test_unknown_field_and_bad_destination_are_refused():
    with pytest.raises(ImproperlyConfigured, match="'refrence'"):
        _order_proxy("UnknownFieldOrder", pgoutbox.Config("/topic/x", fields=["refrence"]))
    with pytest.raises(ImproperlyConfigured, match="must start with '/'"):
        _order_proxy("BareDestinationOrder", pgoutbox.Config("orders"))


def test_serialization_error_rolls_back_the_model_row():
    model = _order_proxy("UnserializableOrder", pgoutbox.Config("/topic/x", serializer="when"))
    with pytest.raises(SerializationError, match="not JSON-serializable"):
        model.objects.create(reference="never saved")
    assert not Order.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_publishing_a_model_again_replaces_its_events_instead_of_stacking():
    model = _order_proxy("RedecoratedOrder", pgoutbox.Config("/topic/first"))
    for n in range(7):
        model = pgoutbox.publish([pgoutbox.Config(f"/topic/again-{n}")])(model)
    model.objects.create(reference="once")
    assert [e.destination for e in OutboxEvent.objects.all()] == ["/topic/again-6"]
    assert Order.objects.get().reference == "once"


def test_a_subclass_of_a_published_model_keeps_its_parents_events_when_published():
    model = _order_proxy("PublishedParentOrder", pgoutbox.Config("/topic/parent"))
    meta = type("Meta", (), {"proxy": True, "app_label": "app"})
    child = type("PublishedChildOrder", (model,), {"__module__": __name__, "Meta": meta})
    child = pgoutbox.publish([pgoutbox.Config("/topic/child")])(child)
    child.objects.create(reference="child")
    assert sorted(e.destination for e in OutboxEvent.objects.all()) == [
        "/topic/child",
        "/topic/parent",
    ]
