"""Bodies and headers to bytes and JSON, before any row is written."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from pgoutbox.errors import SerializationError

JSON_CONTENT_TYPE = "application/json"
TEXT_CONTENT_TYPE = "text/plain;charset=utf-8"
BINARY_CONTENT_TYPE = "application/octet-stream"


def encode_body(
    body: Any, encoder: type[json.JSONEncoder] = DjangoJSONEncoder
) -> tuple[bytes, str]:
    """Return ``(bytes, content type)`` for a str, bytes or JSON-able body.

    Raises :class:`SerializationError` (a ``TypeError``) naming the value that cannot be encoded.
    """
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body), BINARY_CONTENT_TYPE
    if isinstance(body, str):
        return body.encode("utf-8"), TEXT_CONTENT_TYPE
    try:
        text = json.dumps(body, cls=encoder, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"event body is not JSON-serializable: {exc} (body: {_short_repr(body)})"
        ) from exc
    return text.encode("utf-8"), JSON_CONTENT_TYPE


def _short_repr(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def normalize_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """Copy headers into a plain dict; names and values must already be str."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise SerializationError(
            f"headers must be a mapping of str to str, got {_short_repr(headers)}"
        )
    return dict(headers)


# send(..., compat=...): the header conventions of a replaced library a consumer may still run.
OUTBOX_PATTERN = "outbox-pattern"
COMPAT_HEADERS = (OUTBOX_PATTERN,)


def dop_headers(message_id: uuid.UUID, destination: str) -> dict[str, str]:
    """django-outbox-pattern's headers: ``dop-msg-id`` is the event's ``message_id`` (stable
    across redeliveries), ``dop-msg-sent-time`` the time the event was written,
    ``dop-correlation-id`` the current request id when request-id-django-log is installed and
    a request is being served, else a new UUID."""
    sent_time = DjangoJSONEncoder().default(timezone.now())
    return {
        "dop-msg-id": str(message_id),
        "dop-msg-destination": destination,
        "dop-msg-type": "Published",
        "dop-msg-sent-time": str(sent_time),
        "dop-correlation-id": correlation_id(),
    }


def correlation_id() -> str:
    """The request id request-id-django-log's middleware set for this thread (its
    ``"none"`` when unset becomes a new UUID), as django-outbox-pattern sends it."""
    try:
        from request_id_django_log.request_id import current_request_id
    except ImportError:
        return str(uuid.uuid4())
    current = current_request_id()
    if not current or current == "none":
        return str(uuid.uuid4())
    return str(current)


def compat_headers(
    compat: str | None,
    destination: str,
    headers: Mapping[str, Any] | None,
    message_id: uuid.UUID | None,
) -> tuple[Mapping[str, Any] | None, uuid.UUID | None]:
    """Return ``send()``'s headers and message id with a replaced library's headers added.

    ``compat="outbox-pattern"`` adds the ``dop-*`` headers (``dop-msg-id`` is the event's
    message id, chosen here when the caller gave none), so consumers still running
    django-outbox-pattern deduplicate pgoutbox's messages; the caller's headers win.
    ``compat=None`` changes nothing. Raises ``ValueError`` naming an unknown ``compat``.
    """
    if compat is None:
        return headers, message_id
    if compat != OUTBOX_PATTERN:
        raise ValueError(f"compat must be None or one of {COMPAT_HEADERS}, got {compat!r}")
    message_id = message_id or uuid.uuid4()
    return {**dop_headers(message_id, destination), **normalize_headers(headers)}, message_id
