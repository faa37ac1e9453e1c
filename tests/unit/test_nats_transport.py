"""The JetStream transport without I/O: destination → subject, headers, settings."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured

from pgoutbox.conf import parse_settings
from pgoutbox.transports.base import MESSAGE_ID_HEADER, Message
from pgoutbox.transports.nats import JetStreamTransport, nats_headers, nats_subject


@pytest.mark.parametrize(
    ("destination", "subject"),
    [
        ("/orders.created", "orders.created"),
        ("/queue/orders", "queue.orders"),
        ("/a/b.c", "a.b.c"),
        ("/topic/x-y_z", "topic.x-y_z"),
    ],
)
def test_destination_maps_to_subject(destination, subject):
    assert nats_subject(destination) == subject


@pytest.mark.parametrize(
    "destination", ["/", "orders", "/a//b", "/a/", "/a..b", "/a/*", "/a/>", "/a b", "/a/\tb"]
)
def test_unpublishable_subjects_are_refused_by_name(destination):
    with pytest.raises(ValueError, match="destination"):
        nats_subject(destination)


def test_every_message_carries_its_id_for_jetstream_dedupe():
    message_id = uuid.uuid4()
    message = Message(1, message_id, "/a", b"", {"content-type": "text/plain"})
    assert nats_headers(message) == {
        "content-type": "text/plain",
        MESSAGE_ID_HEADER: str(message_id),
        "Nats-Msg-Id": str(message_id),
    }


@pytest.mark.parametrize("headers", [{"a:b": "x"}, {"a b": "x"}, {"a": "x\r\ny"}])
def test_headers_nats_cannot_carry_are_refused(headers):
    with pytest.raises(ValueError, match="cannot be carried"):
        nats_headers(Message(1, uuid.uuid4(), "/a", b"", headers))


def test_settings_default_and_validation():
    assert parse_settings({}).nats_url == "nats://127.0.0.1:4222"
    assert parse_settings({"NATS_URL": "tls://n1:4222"}).nats_url == "tls://n1:4222"
    with pytest.raises(ImproperlyConfigured, match=r"'NATS_URL'.*nats://"):
        parse_settings({"NATS_URL": "127.0.0.1:4222"})


def test_several_servers_and_no_credentials_in_repr():
    settings = parse_settings({"NATS_URL": "nats://u:s3cret@n1:4222, nats://n2:4222"})
    assert repr(JetStreamTransport(settings)) == "<JetStreamTransport n1:4222, n2:4222>"


def test_every_server_of_a_list_is_validated():
    with pytest.raises(ImproperlyConfigured, match=r"'NATS_URL'.*separated by commas"):
        parse_settings({"NATS_URL": "nats://n1:4222,n2:4222"})
