"""``subscribe`` callbacks of the consumer benchmark (run inside ``manage.py subscribe``)."""

from __future__ import annotations

from django.db import transaction

from pgoutbox.consumer.payload import Payload
from tests.app.models import Order


def record(payload: Payload) -> None:
    """The usual callback: one business row and the inbox row in one transaction."""
    with transaction.atomic():
        Order.objects.create(reference=payload.body["ref"])
        payload.save()


def ack_only(payload: Payload) -> None:
    """No database work in the callback (the consumer's inbox pre-check still runs), except
    one row once the message marked ``last`` arrives, which tells the benchmark it is done."""
    payload.ack()
    if payload.headers.get("last"):
        Order.objects.create(reference=payload.headers["last"])
