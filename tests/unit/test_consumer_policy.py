"""The consumer's pure parts: SUBSCRIBE headers, the dedupe key, body parsing, what becomes
of a message after its callback, dead-letter headers."""

from __future__ import annotations

import django.db
import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured

from pgoutbox.conf import parse_settings
from pgoutbox.consumer.connection import dead_letter_headers, dlq_destination
from pgoutbox.consumer.dlq import check_queue_name, replay_headers
from pgoutbox.consumer.inbox import message_id_of
from pgoutbox.consumer.outcome import Outcome, is_transient_database_error, outcome_of
from pgoutbox.consumer.payload import parse_body
from pgoutbox.consumer.subscriber import queue_name_of, subscribe_headers
from pgoutbox.errors import AlreadyReceived


def test_subscriptions_carry_no_queue_arguments_and_name_exchange_and_topic_queues():
    settings = parse_settings({"CONSUMER_PREFETCH": 10})
    queue = queue_name_of("/exchange/saga/order.v1")
    assert queue == "order.v1"
    assert subscribe_headers(settings, "/exchange/saga/order.v1", queue) == {
        "durable": "true",
        "auto-delete": "false",
        "exclusive": "false",
        "prefetch-count": "10",
        "x-queue-name": "order.v1",
    }
    assert subscribe_headers(settings, "/topic/order", "mine")["x-queue-name"] == "mine"
    assert subscribe_headers(settings, "/queue/order", "order") == {
        "durable": "true",
        "auto-delete": "false",
        "exclusive": "false",
        "prefetch-count": "10",
    }


def test_queue_arguments_on_a_queue_destination_are_refused():
    settings = parse_settings({"CONSUMER_QUEUE_HEADERS": {"x-expires": "60000"}})
    with pytest.raises(ImproperlyConfigured, match=r"\['x-expires'\].*PRECONDITION_FAILED"):
        subscribe_headers(settings, "/queue/orders", "orders")
    # on an exchange the consumer's queue is declared by the consumer only: allowed
    assert subscribe_headers(settings, "/exchange/e/k", "k")["x-expires"] == "60000"


@pytest.mark.parametrize(
    ("error", "acked", "nacked", "expected"),
    [
        (None, False, False, Outcome.ACK),
        (None, True, False, Outcome.ALREADY_ACKED),
        (None, False, True, Outcome.DEAD_LETTER),
        (KeyError("business"), False, False, Outcome.DEAD_LETTER),
        (django.db.IntegrityError("business duplicate"), False, False, Outcome.DEAD_LETTER),
        (django.db.OperationalError("server closed"), False, False, Outcome.RETRY),
        (django.db.InterfaceError("connection already closed"), False, False, Outcome.RETRY),
        (psycopg.OperationalError("failover"), False, False, Outcome.RETRY),
        (django.db.OperationalError("but nacked"), False, True, Outcome.DEAD_LETTER),
        (AlreadyReceived("x"), False, False, Outcome.DUPLICATE),
    ],
)
def test_outcome_of_a_callback(error, acked, nacked, expected):
    assert outcome_of(error, acked=acked, nacked=nacked) is expected


def test_a_transient_error_raised_from_another_is_still_transient():
    try:
        try:
            raise django.db.OperationalError("terminating connection")
        except django.db.OperationalError as exc:
            raise RuntimeError("could not save the order") from exc
    except RuntimeError as wrapped:
        assert is_transient_database_error(wrapped)
    assert not is_transient_database_error(RuntimeError("plain"))


def test_dead_letters_keep_the_message_headers_but_not_the_delivery_ones():
    delivered = {
        "destination": "/queue/orders",
        "message-id": "T_1@@session@@1",
        "subscription": "pgoutbox-consumer",
        "ack": "T_1@@session@@1",
        "redelivered": "true",
        "content-length": "9",
        "persistent": "true",
        "dop-msg-id": "d",
        "pgoutbox-message-id": "p",
        "x-tenant": "acme",
    }
    headers = dead_letter_headers(delivered, "KeyError('ref')\n  with a traceback")
    assert headers == {
        "dop-msg-id": "d",
        "pgoutbox-message-id": "p",
        "x-tenant": "acme",
        "persistent": "true",
        "pgoutbox-dead-letter-from": "/queue/orders",
        "pgoutbox-dead-letter-reason": "KeyError('ref') with a traceback",
    }
    assert len(dead_letter_headers({}, "x" * 2000)["pgoutbox-dead-letter-reason"]) == 500
    assert dlq_destination("order.v1") == "/queue/DLQ.order.v1"


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


def test_a_replayed_dead_letter_drops_the_dead_letter_and_delivery_headers():
    dead = dead_letter_headers(
        {"destination": "/queue/orders", "message-id": "T_1", "dop-msg-id": "d"}, "boom"
    )
    delivered_again = {**dead, "message-id": "T_9", "subscription": "pgoutbox-dlq", "ack": "T_9"}
    assert replay_headers(delivered_again) == {"dop-msg-id": "d", "persistent": "true"}
    assert check_queue_name("order.v1") == "order.v1"
    for bad in ("", "/queue/orders", "DLQ.orders"):
        with pytest.raises(ValueError, match="is not a queue name"):
            check_queue_name(bad)
