"""Broker unreachable: rows stay, attempts grow, nothing is marked sent or dead; delivered after."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

import pgoutbox
from pgoutbox.models import OutboxEvent
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_proxy(stomp_broker):
    proxy = TcpProxy(stomp_broker)
    yield proxy
    proxy.close()


def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_broker_outage_keeps_rows_then_delivers_them(
    settings, broker_proxy, stomp_consumer, relay_thread
):
    consumer = stomp_consumer()
    broker_proxy.cut()
    with override_settings(
        PGOUTBOX={
            **settings.PGOUTBOX,
            "STOMP_HOSTS": [("127.0.0.1", broker_proxy.port)],
            "STOMP_CONNECT_TIMEOUT": 1,
            "RECONNECT_BACKOFF_MAX": 1,
            "MAX_ATTEMPTS": 2,  # an outage must never make an event dead
        }
    ):
        relay_thread(poll_interval=0.2)
        ids = {str(pgoutbox.send(consumer.destination, {"n": n})) for n in range(20)}
        assert _wait_until(
            lambda: OutboxEvent.objects.filter(attempts__gte=3).count() == 20, timeout=20
        ), list(OutboxEvent.objects.values_list("attempts", flat=True))

        rows = OutboxEvent.objects.all()
        assert {row.status for row in rows} == {"pending"}
        assert all("STOMP" in (row.last_error or "") for row in rows)
        assert all(row.sent_at is None for row in rows)
        assert consumer.messages == []

        broker_proxy.restore()
        received = consumer.wait_for(20, timeout=20)
    assert {m.message_id for m in received} == ids
    assert _wait_until(lambda: not OutboxEvent.objects.exists(), timeout=5)


def test_events_relay_once_fails_when_the_broker_is_unreachable(settings, broker_proxy):
    broker_proxy.cut()
    settings.PGOUTBOX = {
        **settings.PGOUTBOX,
        "STOMP_HOSTS": [("127.0.0.1", broker_proxy.port)],
        "STOMP_CONNECT_TIMEOUT": 1,
    }
    pgoutbox.send("/queue/x", "waits")

    with pytest.raises(CommandError, match="broker unavailable, events left pending"):
        call_command("events_relay", stdout=io.StringIO())

    row = OutboxEvent.objects.get()
    assert (row.status, row.attempts) == ("pending", 1)
    assert "STOMP" in (row.last_error or "")


class _BrokenTransport:
    """A transport breaking its contract: ``publish_batch`` raises something unexpected."""

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def publish_batch(self, messages):
        raise RuntimeError("transport bug")


def test_an_unexpected_transport_error_keeps_the_batch_and_the_relay_alive(settings, relay_thread):
    settings.PGOUTBOX = {**settings.PGOUTBOX, "RECONNECT_BACKOFF_MAX": 0.2}
    runner = relay_thread(poll_interval=0.1, transport=_BrokenTransport())
    pgoutbox.send("/queue/x", "kept")

    assert _wait_until(lambda: OutboxEvent.objects.filter(attempts__gte=2).exists(), timeout=10)
    row = OutboxEvent.objects.get()
    assert row.status == "pending"
    assert "transport error: RuntimeError('transport bug')" in (row.last_error or "")
    assert runner.thread.is_alive()
