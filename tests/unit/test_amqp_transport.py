"""The AMQP transport without I/O: destinations read as RabbitMQ's STOMP plugin reads them,
message properties, and its settings."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured

from pgoutbox.conf import parse_settings
from pgoutbox.transports.amqp import AmqpTransport, Route, amqp_route, properties
from pgoutbox.transports.base import MESSAGE_ID_HEADER, Message


@pytest.mark.parametrize(
    ("destination", "route"),
    [
        ("/queue/orders", Route("", "orders", queue="orders")),
        ("/queue/a.b-c", Route("", "a.b-c", queue="a.b-c")),
        ("/queue/a%2Fb", Route("", "a/b", queue="a/b")),
        ("/amq/queue/orders", Route("", "orders")),
        ("/topic/orders.created", Route("amq.topic", "orders.created")),
        ("/topic/a/b", Route("amq.topic", "a/b")),
        ("/exchange/billing/invoice.paid", Route("billing", "invoice.paid")),
        ("/exchange/billing", Route("billing", "")),
        ("/exchange/billing/", Route("billing", "")),
        ("/exchange/billing/a/b", Route("billing", "a/b")),
        ("/exchange/amq.fanout/x", Route("amq.fanout", "x")),
    ],
)
def test_destinations_map_as_the_stomp_plugin_maps_them(destination, route):
    assert amqp_route(destination) == route


@pytest.mark.parametrize(
    "destination",
    [
        "/queue/",
        "/queue/a/b",
        "/amq/queue/",
        "/amq/queue/a/b",
        "/amq/other/x",
        "/topic/",
        "/exchange/",
        "/exchange//key",
        "/temp-queue/x",
        "/reply-queue/x",
        "/orders",
        "/",
        "/queue/" + "q" * 256,
    ],
)
def test_destinations_without_an_amqp_meaning_are_refused_by_name(destination):
    with pytest.raises(ValueError, match=r"destination|longer than 255"):
        amqp_route(destination)


def test_properties_carry_the_message_id_persistence_and_headers():
    message_id = uuid.uuid4()
    message = Message(
        1, message_id, "/queue/q", b"{}", {"content-type": "application/json", "x": "1"}
    )
    props = properties(message, persistent=True)
    assert props.message_id == str(message_id)
    assert props.content_type == "application/json"
    assert props.delivery_mode == 2
    assert props.headers == {"x": "1", MESSAGE_ID_HEADER: str(message_id)}
    assert properties(message, persistent=False).delivery_mode == 1


def test_settings_default_and_validation():
    settings = parse_settings({})
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert parse_settings({"AMQP_URL": "amqps://mq:5671/prod"}).amqp_url == "amqps://mq:5671/prod"
    with pytest.raises(ImproperlyConfigured, match=r"'AMQP_URL'.*amqp://.*\(value hidden\)"):
        parse_settings({"AMQP_URL": "http://user:s3cret@mq/"})
    with pytest.raises(ImproperlyConfigured, match=r"'AMQP_SSL_CA_CERTS'.*non-empty str"):
        parse_settings({"AMQP_SSL_CA_CERTS": 3})


def test_tls_options_without_an_amqps_url_are_an_error_not_ignored():
    with pytest.raises(ImproperlyConfigured, match=r"\['AMQP_SSL_CA_CERTS'\] are set.*amqps://"):
        parse_settings({"AMQP_SSL_CA_CERTS": "/etc/ca.pem"})
    settings = parse_settings({"AMQP_URL": "amqps://mq/%2F", "AMQP_SSL_CA_CERTS": "/etc/ca.pem"})
    assert settings.amqp_ssl_ca_certs == "/etc/ca.pem"


def test_credentials_stay_out_of_repr():
    settings = parse_settings({"AMQP_URL": "amqp://user:s3cret@mq:5672/%2F"})
    assert "s3cret" not in repr(settings)
    assert repr(AmqpTransport(settings)) == "<AmqpTransport amqp://mq:5672/%2F>"


@pytest.mark.parametrize(
    ("module", "client", "extra"),
    [("pgoutbox.transports.amqp", "aiormq", "amqp"), ("pgoutbox.transports.nats", "nats", "nats")],
)
def test_a_missing_extra_names_the_package_to_install(module, client, extra):
    # A fresh interpreter where the client library cannot be imported.
    code = f"import sys; sys.modules[{client!r}] = None; import {module}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert f"pip install 'pgoutbox[{extra}]'" in result.stderr
