"""Fixtures for the AMQP and JetStream transports on the real local brokers, and a
``transport_setup`` that lets one scenario run over every transport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.factories import closing_factory
from tests.support.jetstream import JetStreamSink
from tests.support.ledger import CountingConsumer
from tests.support.services import amqp_url, nats_url, require_tcp, url_address

TRANSPORTS = {
    "stomp": "pgoutbox.transports.stomp.StompTransport",
    "amqp": "pgoutbox.transports.amqp.AmqpTransport",
    "jetstream": "pgoutbox.transports.nats.JetStreamTransport",
}


@pytest.fixture(scope="session")
def amqp_broker() -> str:
    """RabbitMQ's AMQP URL; fails under CI (skips locally) when it is unreachable."""
    url = amqp_url()
    require_tcp("RabbitMQ AMQP", *url_address(url, 5672))
    return url


@pytest.fixture(scope="session")
def nats_broker() -> str:
    """The NATS (JetStream) URL; fails under CI (skips locally) when it is unreachable."""
    url = nats_url()
    require_tcp("NATS", *url_address(url, 4222))
    return url


@pytest.fixture
def jetstream_sink(nats_broker: str) -> Iterator[Callable[[], JetStreamSink]]:
    """Factory: a fresh stream and a reader of everything it stores; deleted at teardown."""
    yield from closing_factory(lambda: JetStreamSink(nats_broker).start(), JetStreamSink.stop)


@dataclass(frozen=True)
class TransportSetup:
    """One transport under test: the ``PGOUTBOX`` keys selecting it and a factory of the
    matching sink (a STOMP subscriber on RabbitMQ, or a JetStream stream)."""

    name: str
    settings: dict[str, Any]
    sink: Callable[[], CountingConsumer | JetStreamSink]
    address: tuple[str, int]  # where the relay connects, for a TCP proxy to stand in between

    def url(self, address: tuple[str, int]) -> dict[str, Any]:
        """The keys pointing this transport at ``address`` (a TCP proxy) instead."""
        host, port = address
        if self.name == "amqp":
            return {"AMQP_URL": f"amqp://guest:guest@{host}:{port}/%2F"}
        if self.name == "jetstream":
            return {"NATS_URL": f"nats://{host}:{port}"}
        return {"STOMP_HOSTS": [[host, port]]}


@pytest.fixture(params=list(TRANSPORTS))
def transport_setup(request: pytest.FixtureRequest) -> TransportSetup:
    name = request.param
    settings: dict[str, Any] = {"TRANSPORT": TRANSPORTS[name]}
    if name == "jetstream":
        settings["NATS_URL"] = request.getfixturevalue("nats_broker")
        address = url_address(settings["NATS_URL"], 4222)
        sink: Any = request.getfixturevalue("jetstream_sink")
    else:
        if name == "amqp":
            settings["AMQP_URL"] = request.getfixturevalue("amqp_broker")
            address = url_address(settings["AMQP_URL"], 5672)
        else:
            address = request.getfixturevalue("stomp_broker")
        # AMQP's /topic/<key> is amq.topic, where RabbitMQ's STOMP subscriber is bound.
        sink = request.getfixturevalue("counting_consumer")
    return TransportSetup(name, settings, sink, address)
