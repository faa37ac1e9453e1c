"""Helpers of the ``subscribe`` consumer tests: a subscriber in a thread, what its callback
saw, plain stomp.py producers, an extra database alias, and expiry of test queues."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any, Self

import stomp
from django.db import connections

from pgoutbox.consumer.payload import Payload
from pgoutbox.consumer.subscriber import Subscriber
from tests.support.relay_runner import StoppableThread

# Test queues (and their DLQs) disappear 10 minutes after their last use. A broker policy,
# not an x-expires queue argument: arguments would make plain SENDs fail.
TEST_QUEUE_PATTERN = r"^(DLQ\.)?pgoutbox-test-"


def expire_test_queues() -> None:
    """Set the broker policy that expires test queues, where ``rabbitmqctl`` is at hand (the
    policy only tidies the broker; no test depends on it)."""
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        return
    subprocess.run(
        [
            rabbitmqctl,
            "set_policy",
            "--apply-to",
            "queues",
            "pgoutbox-test-queues",
            TEST_QUEUE_PATTERN,
            '{"expires": 600000}',
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )


class Calls:
    """Payloads a callback saw, and a way to wait for them."""

    def __init__(self) -> None:
        self.payloads: list[Payload] = []
        self.changed = threading.Condition()

    def add(self, payload: Payload) -> None:
        with self.changed:
            self.payloads.append(payload)
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Payload]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.payloads) >= count, timeout)
            return list(self.payloads)


class SubscriberThread(StoppableThread):
    def __init__(self, subscriber: Subscriber) -> None:
        super().__init__(subscriber.run)
        self.subscriber = subscriber

    def start(self) -> Self:
        super().start()
        if not self.subscriber.subscribed.wait(15):
            raise AssertionError("the subscriber did not subscribe in time")
        return self


class StompProducer(stomp.ConnectionListener):  # type: ignore[misc]
    """A plain stomp.py producer, as a foreign service would run: every SEND waits for its
    receipt, and an ERROR frame or a closed connection fails the test."""

    def __init__(self, broker: tuple[str, int]) -> None:
        self.changed = threading.Condition()
        self.receipts: set[str] = set()
        self.errors: list[str] = []
        self.disconnected = False
        self.count = 0
        self.conn = stomp.StompConnection12([broker], vhost="/")
        self.conn.set_listener("producer", self)
        self.conn.connect("guest", "guest", wait=True)

    def on_receipt(self, frame: Any) -> None:
        with self.changed:
            self.receipts.add(frame.headers["receipt-id"])
            self.changed.notify_all()

    def on_error(self, frame: Any) -> None:
        with self.changed:
            self.errors.append(f"{frame.headers.get('message')}: {frame.body}")
            self.changed.notify_all()

    def on_disconnected(self) -> None:
        with self.changed:
            self.disconnected = True
            self.changed.notify_all()

    def send(self, destination: str, body: str, headers: dict[str, str] | None = None) -> None:
        self.count += 1
        receipt = f"sent-{self.count}"
        self.conn.send(destination, body, headers={**(headers or {}), "receipt": receipt})
        with self.changed:
            self.changed.wait_for(
                lambda: receipt in self.receipts or bool(self.errors) or self.disconnected, 10
            )
        assert not self.errors, f"SEND to {destination} failed: {self.errors}"
        assert receipt in self.receipts, f"no receipt for the SEND to {destination}"

    def close(self) -> None:
        # RabbitMQ closes the connection after an ERROR frame: it may be gone already.
        if self.conn.is_connected():
            with contextlib.suppress(OSError):
                self.conn.disconnect()


def send_raw(
    broker: tuple[str, int], destination: str, body: str, headers: dict[str, str] | None = None
) -> None:
    """SEND once with a fresh stomp.py connection and wait for its receipt."""
    producer = StompProducer(broker)
    try:
        producer.send(destination, body, headers)
    finally:
        producer.close()


@contextlib.contextmanager
def database_through(alias: str, port: int) -> Iterator[str]:
    """Point ``alias`` (a mirror of the test database in tests/settings.py) at ``port``
    until exit; threads that used it must have closed their connection by then."""
    settings_dict = connections[alias].settings_dict  # shared by every thread's wrapper
    saved = settings_dict["PORT"]
    settings_dict["PORT"] = str(port)
    try:
        yield alias
    finally:
        connections[alias].close()
        settings_dict["PORT"] = saved


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
