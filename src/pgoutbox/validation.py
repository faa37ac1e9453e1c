"""Rules every event must satisfy, checked by the producer before writing and by the relay
before publishing (rows can be inserted with plain SQL). Each returns an error message or None.
"""

from __future__ import annotations

from typing import Any

MAX_STREAM_BYTES = 200  # the table's CHECK constraint says the same

# Headers the transport sets itself or that change STOMP framing: a user value would be
# overridden, corrupt the frame (content-length) or send the message elsewhere.
RESERVED_HEADERS = frozenset(
    {
        "content-length",
        "destination",
        "receipt",
        "transaction",
        "persistent",
        "pgoutbox-message-id",
        "amqp-message-id",
    }
)


def destination_error(destination: Any) -> str | None:
    if not isinstance(destination, str) or not destination:
        return f"destination must be a non-empty str, got {destination!r}"
    if not destination.startswith("/"):
        return f"destination must start with '/' (e.g. '/queue/orders'), got {destination!r}"
    if any(ch in destination for ch in "\r\n\0"):
        return f"destination must not contain line breaks or NUL, got {destination!r}"
    return None


def headers_error(headers: Any) -> str | None:
    if not isinstance(headers, dict):
        return f"headers must be a JSON object of strings, got {type(headers).__name__}"
    for name, value in headers.items():
        if not isinstance(name, str) or not name:
            return f"header names must be non-empty str, got {name!r}"
        if name.lower() in RESERVED_HEADERS:
            return f"header {name!r} is set by pgoutbox and cannot be given"
        if not isinstance(value, str):
            return f"header {name!r} must be a str, got {type(value).__name__} {value!r}"
        if "\0" in name or "\0" in value:
            return f"header {name!r} must not contain NUL"
    return None


def stream_error(stream: Any) -> str | None:
    if not isinstance(stream, str):
        return f"stream must be a str, got {type(stream).__name__}"
    if len(stream.encode("utf-8")) > MAX_STREAM_BYTES:
        return f"stream must be at most {MAX_STREAM_BYTES} bytes in UTF-8, got {stream[:40]!r}..."
    if "\0" in stream:
        return "stream must not contain NUL"
    return None


def ordered_error(ordered: Any, stream: Any) -> str | None:
    if not isinstance(ordered, bool):
        return f"ordered must be a bool, got {type(ordered).__name__} {ordered!r}"
    if ordered and not stream:
        return (
            "ordered=True needs a stream: messages are ordered within a stream "
            "(e.g. stream=f'order-{order.pk}')"
        )
    return None


def body_size_error(body: bytes, max_bytes: int) -> str | None:
    if len(body) > max_bytes:
        return f"body is {len(body)} bytes, over MAX_BODY_BYTES ({max_bytes})"
    return None
