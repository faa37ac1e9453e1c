"""The consumer through outages: the database away while messages arrive (no reconnect storm
to the broker, every message processed once when it returns), and a second signal."""

from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path

import pytest
from django.db import connections, transaction

from pgoutbox.conf import get_settings
from pgoutbox.consumer.payload import Payload
from pgoutbox.consumer.subscriber import Subscriber
from pgoutbox.models import ReceivedMessage
from tests.app.models import Order
from tests.support.consumer import Calls, SubscriberThread, database_through, send_raw
from tests.support.relay_runner import start_command
from tests.support.tcp_proxy import TcpProxy

BACKOFF_MAX = 2.0
JITTER = 0.25  # pgoutbox.policy.compute_backoff's default: a delay is at least 75 % of its step


def most_attempts_within(seconds: float) -> int:
    """How many tries a backoff from 0.5 s doubling up to ``BACKOFF_MAX`` (each delay at
    least 75 % of its step) fits in ``seconds``: one now, one after each delay."""
    attempts, elapsed, step = 1, 0.0, 0.5
    while True:
        elapsed += min(step, BACKOFF_MAX) * (1 - JITTER)
        if elapsed > seconds:
            return attempts
        attempts, step = attempts + 1, step * 2


@pytest.mark.django_db(transaction=True, databases=["default", "proxied"])
def test_a_database_outage_backs_off_without_reconnecting_to_the_broker(
    stomp_broker, queue_name, caplog
):
    default = connections["default"].settings_dict
    database = TcpProxy((default["HOST"] or "127.0.0.1", int(default["PORT"] or 5432)))
    broker = TcpProxy(stomp_broker)
    calls = Calls()

    def record(payload: Payload) -> None:
        with transaction.atomic(using="proxied"):
            Order.objects.using("proxied").create(reference=payload.body["ref"])
            payload.save()
        calls.add(payload)

    destination = f"/exchange/amq.direct/{queue_name}"
    settings = dataclasses.replace(
        get_settings(),
        database="proxied",
        stomp_hosts=(("127.0.0.1", broker.port),),
        reconnect_backoff_max=BACKOFF_MAX,
    )
    with database_through("proxied", database.port):
        consumer = SubscriberThread(
            Subscriber(record, destination, queue_name, settings=settings)
        ).start()
        try:
            send_raw(stomp_broker, destination, '{"ref": "O-0"}', {"dop-msg-id": "o-0"})
            assert len(calls.wait_for(1)) == 1

            database.cut()
            started = time.monotonic()
            for n in range(1, 6):
                send_raw(stomp_broker, destination, f'{{"ref": "O-{n}"}}', {"dop-msg-id": f"o-{n}"})
            time.sleep(5.0)
            outage = time.monotonic() - started
            retries = caplog.text.count("database unavailable")
            assert broker.accepted == 1, "the consumer reconnected to the broker"
            assert 2 <= retries <= most_attempts_within(outage), (retries, outage)
            assert len(calls.payloads) == 1

            database.restore()
            payloads = calls.wait_for(6, timeout=20)
            assert [p.body["ref"] for p in payloads] == [f"O-{n}" for n in range(6)]
        finally:
            consumer.stop()
            database.close()
            broker.close()
    assert sorted(Order.objects.values_list("reference", flat=True)) == [f"O-{n}" for n in range(6)]
    assert ReceivedMessage.objects.filter(consumer=queue_name).count() == 6
    time.sleep(0.5)
    assert len(calls.payloads) == 6


def _wait_for_text(log: Path, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the log within {timeout}s:\n{log.read_text()}")


@pytest.mark.django_db(transaction=True)
def test_a_second_sigterm_stops_a_hung_callback_at_once(stomp_broker, queue_name, tmp_path):
    log = tmp_path / "subscribe.log"
    destination = f"/queue/{queue_name}"
    process = start_command(["subscribe", "tests.app.callbacks.hang", destination], log=log)
    try:
        _wait_for_text(log, "subscribed to")
        send_raw(stomp_broker, destination, '{"ref": "H-1"}', {"dop-msg-id": "h1"})
        _wait_for_text(log, "callback hangs on h1")
        process.send_signal(signal.SIGTERM)
        _wait_for_text(log, "send it again to exit now")
        time.sleep(0.5)
        assert process.poll() is None  # the first signal waits for the callback
        process.send_signal(signal.SIGTERM)
        assert process.wait(5) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "exiting at once" in log.read_text()
    assert not ReceivedMessage.objects.exists()
