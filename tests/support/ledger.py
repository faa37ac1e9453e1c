"""Event accounting for fault tests: what was committed against what a consumer received.

A :class:`Ledger` records the message id of every event whose transaction committed (and only
those); a :class:`CountingConsumer` records every delivery the broker made. ``account()``
compares the two: lost (committed, never received), duplicated (received more than once, by
``pgoutbox-message-id``) and unexpected (received, never committed).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tests.support.stomp_consumer import StompConsumer

MESSAGE_ID_HEADER = "pgoutbox-message-id"


@dataclass(frozen=True)
class Delivery:
    """One message as the consumer got it; ``at`` is ``time.monotonic()`` on arrival."""

    message_id: str
    body: bytes
    at: float


class CountingConsumer(StompConsumer):
    """A :class:`StompConsumer` that keeps only what accounting needs, so 100,000 deliveries
    stay cheap, and can wait for a set of message ids."""

    def __init__(self, host: str, port: int, destination: str | None = None) -> None:
        super().__init__(host, port, destination)
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()

    def on_message(self, frame: Any) -> None:
        delivery = Delivery(frame.headers.get(MESSAGE_ID_HEADER, ""), frame.body, time.monotonic())
        with self._lock:
            self.deliveries.append(delivery)

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def count(self) -> int:
        with self._lock:
            return len(self.deliveries)

    def wait_for_ids(self, ids: Iterable[str], timeout: float) -> set[str]:
        """Wait until every id in ``ids`` was received (or ``timeout``); return the missing ones."""
        missing = set(ids)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            with self._lock:
                new = self.deliveries[seen:]
                seen = len(self.deliveries)
            missing.difference_update(d.message_id for d in new)
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.05)

    def wait_for_count(self, count: int, timeout: float) -> int:
        """Wait until at least ``count`` deliveries arrived (or ``timeout``); return the count."""
        deadline = time.monotonic() + timeout
        while self.count() < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.count()


@dataclass(frozen=True)
class Accounting:
    """The outcome of comparing a ledger with the deliveries."""

    committed: int
    delivered: int  # deliveries, duplicates included
    lost: frozenset[str]
    duplicates: dict[str, int]  # message id -> copies received (> 1)
    unexpected: frozenset[str]

    @property
    def duplicate_copies(self) -> int:
        """Deliveries beyond the first of each message id."""
        return sum(copies - 1 for copies in self.duplicates.values())

    def __str__(self) -> str:
        return (
            f"committed={self.committed} delivered={self.delivered} lost={len(self.lost)} "
            f"duplicated ids={len(self.duplicates)} (extra copies={self.duplicate_copies}) "
            f"unexpected={len(self.unexpected)}"
        )


class Ledger:
    """Message ids of committed events, in commit order, with the body each was given."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.committed: dict[str, int] = {}  # message id -> sequence number (commit order)

    def record(self, message_ids: Iterable[Any]) -> None:
        """Record ids whose transaction has committed; call it after COMMIT, never before."""
        with self._lock:
            for message_id in message_ids:
                self.committed[str(message_id)] = len(self.committed)

    def ids(self) -> set[str]:
        with self._lock:
            return set(self.committed)

    def __len__(self) -> int:
        with self._lock:
            return len(self.committed)

    def account(self, deliveries: Sequence[Delivery]) -> Accounting:
        """Compare the deliveries with the committed ids; also check that every copy of a
        duplicated id carries the same body (it is the same event, not a collision)."""
        copies = Counter(d.message_id for d in deliveries)
        bodies: dict[str, bytes] = {}
        for d in deliveries:
            if bodies.setdefault(d.message_id, d.body) != d.body:
                raise AssertionError(f"two different bodies under message id {d.message_id}")
        committed = self.ids()
        return Accounting(
            committed=len(committed),
            delivered=len(deliveries),
            lost=frozenset(committed - copies.keys()),
            duplicates={mid: n for mid, n in copies.items() if n > 1},
            unexpected=frozenset(copies.keys() - committed),
        )
