"""Turn claimed rows into broker messages, or say why a row can never be published."""

from __future__ import annotations

from pgoutbox.relay.store import EventRow
from pgoutbox.transports.base import Message
from pgoutbox.validation import body_size_error, destination_error, headers_error


def to_message(row: EventRow, *, max_body_bytes: int) -> Message | str:
    """Return the :class:`Message` for a row, or the reason it is invalid (it is dead-lettered)."""
    if row.kind != "message":
        return f"unknown event kind {row.kind!r}; this relay publishes kind 'message'"
    error = (
        destination_error(row.destination)
        or headers_error(row.headers)
        or body_size_error(row.body, max_body_bytes)
    )
    if error is not None:
        return error
    assert row.destination is not None
    return Message(
        event_id=row.id,
        message_id=row.message_id,
        destination=row.destination,
        body=bytes(row.body),
        headers=dict(row.headers),
    )
