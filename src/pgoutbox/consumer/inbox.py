"""The consumer's inbox (``pgoutbox_received``): which message ids were already handled."""

from __future__ import annotations

from collections.abc import Mapping

from django.utils import timezone

from pgoutbox.models import ReceivedMessage

# Producer ids that survive redelivery, best first; the broker's message-id is the last
# resort (on RabbitMQ it changes on every delivery, so it deduplicates nothing).
DEDUPE_HEADERS = ("pgoutbox-message-id", "dop-msg-id", "cap-msg-id", "message-id")


def message_id_of(headers: Mapping[str, str]) -> str:
    """Return the id a message is deduplicated on (see ``DEDUPE_HEADERS``)."""
    for name in DEDUPE_HEADERS:
        value = headers.get(name)
        if value:
            return str(value)
    raise ValueError("the message has no message-id header")


def already_received(message_id: str, *, using: str) -> bool:
    """Whether ``message_id`` is in the inbox (committed by an earlier delivery)."""
    return ReceivedMessage.objects.using(using).filter(message_id=message_id).exists()


def record(
    message_id: str, *, destination: str, body: bytes, headers: Mapping[str, str], using: str
) -> None:
    """Insert the inbox row in the current transaction of ``using``.

    Raises ``IntegrityError`` when the id is already there (a concurrent duplicate).
    """
    ReceivedMessage.objects.using(using).create(
        message_id=message_id,
        destination=destination,
        body=body,
        headers=dict(headers),
        status="succeeded",
        processed_at=timezone.now(),
    )
