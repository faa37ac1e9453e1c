"""An in-process transport for tests and the demo: it keeps what it was given."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pgoutbox.conf import Settings
from pgoutbox.transports.base import Message, PublishOutcome


@dataclass(frozen=True)
class Delivery:
    """A message as the memory transport received it, with ``time.time()`` of receipt."""

    message: Message
    received_at: float


class MemoryTransport:
    """Records every published message in :attr:`deliveries`; thread-safe to read."""

    def __init__(self, settings: Settings | None = None) -> None:
        # TRANSPORT = "pgoutbox.transports.memory.MemoryTransport" builds it with the settings,
        # like every transport; it needs none of them.
        self.deliveries: list[Delivery] = []
        self._lock = threading.Condition()

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def publish_batch(self, messages: Sequence[Message]) -> PublishOutcome:
        now = time.time()
        with self._lock:
            self.deliveries.extend(Delivery(message, now) for message in messages)
            self._lock.notify_all()
        return PublishOutcome(
            confirmed=frozenset(m.event_id for m in messages), rejected={}, unconfirmed=frozenset()
        )

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` messages arrived; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self.deliveries) >= count, timeout)
