"""A real STOMP subscriber for tests: collects what the broker delivers."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Self

import stomp

from pgoutbox.transports.stomp import ConnectionState


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def message_id(self) -> str:
        return self.headers["pgoutbox-message-id"]


class StompConsumer(ConnectionState):
    """Subscribes to one destination with auto-ack and keeps every message."""

    def __init__(self, host: str, port: int, destination: str | None = None) -> None:
        super().__init__()
        self.destination = destination or f"/topic/pgoutbox-test-{uuid.uuid4().hex}"
        self.messages: list[Received] = []
        self._conn = stomp.StompConnection12([(host, port)], vhost="/", auto_decode=False)
        self._conn.set_listener("consumer", self)

    def start(self) -> Self:
        self._conn.connect("guest", "guest", wait=True)
        self._conn.subscribe(self.destination, id="1", ack="auto", headers={"receipt": "sub"})
        with self.changed:  # subscribed once the broker answered the receipt
            if not self.changed.wait_for(lambda: "sub" in self.receipts, 10):
                raise TimeoutError(f"no SUBSCRIBE receipt for {self.destination}")
        return self

    def on_message(self, frame: Any) -> None:
        with self.changed:
            self.messages.append(Received(dict(frame.headers), frame.body, time.time()))
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until ``count`` messages arrived (or the timeout passed); return them all."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)

    def quiet_for(self, seconds: float) -> list[Received]:
        """Wait ``seconds`` more (to catch late or duplicate messages); return them all."""
        time.sleep(seconds)
        with self.changed:
            return list(self.messages)

    def stop(self) -> None:
        if self._conn.is_connected():
            self._conn.disconnect()
