"""The consumer's pure parts: SUBSCRIBE headers, the dedupe key, body parsing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from pgoutbox.conf import parse_settings
from pgoutbox.consumer.inbox import message_id_of
from pgoutbox.consumer.payload import parse_body
from pgoutbox.consumer.subscriber import queue_name_of, subscribe_headers


def test_exchange_and_topic_subscriptions_name_their_queue_and_dead_letter_it():
    settings = parse_settings({"CONSUMER_PREFETCH": 10})
    queue = queue_name_of("/exchange/saga/order.v1")
    assert queue == "order.v1"
    assert subscribe_headers(settings, "/exchange/saga/order.v1", queue) == {
        "durable": "true",
        "auto-delete": "false",
        "exclusive": "false",
        "prefetch-count": "10",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "DLQ.order.v1",
        "x-queue-name": "order.v1",
    }
    assert subscribe_headers(settings, "/topic/order", "mine")["x-queue-name"] == "mine"
    assert "x-queue-name" not in subscribe_headers(settings, "/queue/order", "order")


def test_queue_name_defaults_to_the_last_segment():
    assert queue_name_of("/topic/a.b", None) == "a.b"
    assert queue_name_of("/topic/a.b", "given") == "given"


def test_queue_headers_must_not_set_what_the_consumer_sets():
    with pytest.raises(ImproperlyConfigured, match="prefetch-count"):
        parse_settings({"CONSUMER_QUEUE_HEADERS": {"prefetch-count": "5"}})
    with pytest.raises(ImproperlyConfigured, match="CONSUMER_QUEUE_HEADERS"):
        parse_settings({"CONSUMER_QUEUE_HEADERS": {"durable": True}})


def test_dedupe_key_prefers_producer_ids_over_the_broker_id():
    headers = {"message-id": "T_1@@session@@1", "cap-msg-id": "c", "dop-msg-id": "d"}
    assert message_id_of(headers) == "d"
    assert message_id_of({**headers, "pgoutbox-message-id": "p"}) == "p"
    assert message_id_of({"message-id": "T_1@@session@@1", "cap-msg-id": "c"}) == "c"
    assert message_id_of({"message-id": "T_1@@session@@1"}) == "T_1@@session@@1"


def test_body_is_json_or_text():
    assert parse_body(b'{"a": 1}') == {"a": 1}
    assert parse_body(b"plain") == "plain"
    assert parse_body(b"\xff") == "\ufffd"
