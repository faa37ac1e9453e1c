"""Bodies and headers to bytes and JSON, before any row is written."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

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
