"""``send(..., compat="outbox-pattern")``: consumers still running django-outbox-pattern during a
gradual switch deduplicate pgoutbox's messages on their ``dop-msg-id``."""

from __future__ import annotations

import pytest

import pgoutbox
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
