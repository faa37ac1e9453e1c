"""What the relay needs from a broker: open, publish a batch with confirmations, close."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# The header consumers deduplicate on: the event's UUID, the same on every redelivery.
MESSAGE_ID_HEADER = "pgoutbox-message-id"


@dataclass(frozen=True)
class Message:
    """One event ready for the broker."""

    event_id: int
    message_id: uuid.UUID
    destination: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishOutcome:
    """What the broker confirmed of a batch.

    ``confirmed``: event ids the broker took responsibility for (safe to delete).
    ``rejected``: event id → the broker's reason, for messages the broker refused.
    ``unconfirmed``: every other event id; ``failure`` says why (connection lost, timeout).
    """

    confirmed: frozenset[int]
    rejected: Mapping[int, str]
    unconfirmed: frozenset[int]
    failure: str | None = None


class Transport(Protocol):
    """A broker connection the relay publishes through. Not shared between threads."""

    def open(self) -> None:
        """Connect unless connected; raise ``TransportUnavailable`` if the broker is unreachable."""

    def close(self) -> None:
        """Disconnect; never raises."""

    def publish_batch(self, messages: Sequence[Message]) -> PublishOutcome:
        """Send every message and wait for the broker to confirm each one.

        Raises ``TransportUnavailable`` when nothing could be sent; otherwise reports per
        message in the outcome. A message is confirmed only once the broker said so.
        """
