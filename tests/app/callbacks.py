"""``subscribe`` callbacks for tests that run the command as a process."""

from __future__ import annotations

import logging
import time

from django.db import transaction

from pgoutbox.consumer.payload import Payload
from tests.app.models import Order

logger = logging.getLogger("pgoutbox.test_callbacks")


def slow_record(payload: Payload) -> None:
    """Log that it started, take a second, then write an Order and the inbox row together."""
    logger.info("callback started on %s", payload.message_id)
    time.sleep(1.0)
    with transaction.atomic():
        Order.objects.create(reference=payload.body["ref"])
        payload.save()
    logger.info("callback done on %s", payload.message_id)


def hang(payload: Payload) -> None:
    """Log that it started, then hang (a callback stuck on a lock or a remote call)."""
    logger.info("callback hangs on %s", payload.message_id)
    time.sleep(120)


not_a_function = 42
