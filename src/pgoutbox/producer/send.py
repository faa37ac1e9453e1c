"""``send()``: write a message event in the caller's transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, router

from pgoutbox import tracing
from pgoutbox.conf import get_settings
from pgoutbox.errors import InvalidEventError
from pgoutbox.models import OutboxEvent
from pgoutbox.producer import ordering
from pgoutbox.producer.encoding import compat_headers, encode_body, normalize_headers
from pgoutbox.sql import query
from pgoutbox.validation import (
    body_size_error,
    destination_error,
    headers_error,
    ordered_error,
    stream_error,
)


def send(
    destination: str,
    body: Any,
    *,
    headers: Mapping[str, str] | None = None,
    stream: str = "",
    using: str | None = None,
    message_id: uuid.UUID | None = None,
    compat: str | None = None,
    ordered: bool = False,
) -> uuid.UUID:
    """Record a message for ``destination``; it is published if and only if the transaction commits.

    ``body`` may be str (sent as UTF-8), bytes, or anything ``DjangoJSONEncoder`` encodes.
    Returns the event's ``message_id``, the header (``pgoutbox-message-id``) consumers
    deduplicate on. Raises ``TypeError`` (``SerializationError``) for a body that cannot be
    encoded and ``ValueError`` (``InvalidEventError``) for a bad destination, header, stream or
    size, in both cases before anything is written. Outside ``transaction.atomic()`` the row
    commits at once (Django's autocommit). ``message_id`` (default: a random one from the
    database) lets a caller put the id in its own headers before the row is written.
    ``compat="outbox-pattern"`` adds django-outbox-pattern's ``dop-*`` headers (``dop-msg-id``
    is the message id), for consumers still running it during a switch. With OpenTelemetry,
    the current span's ``traceparent`` and ``tracestate`` are added (pgoutbox.tracing).

    ``ordered=True`` (with a ``stream``) publishes the stream's messages in commit order, one
    at a time per stream: the transaction holds the stream's producer lock from this insert to
    its end, so producers of one stream commit one after the other (a transaction that
    already holds another ordered stream raises ``KeepOrderConflict`` rather than deadlock).

    The row is written on ``using``, else the alias Django's router gives for writes of outbox
    events, else ``default``: the alias of the caller's transaction.
    """
    headers, message_id = compat_headers(compat, destination, headers, message_id)
    encoded, content_type = encode_body(body)
    all_headers = {
        "content-type": content_type,
        **tracing.context_headers(),
        **normalize_headers(headers),
    }
    error = (
        destination_error(destination)
        or headers_error(all_headers)
        or stream_error(stream)
        or ordered_error(ordered, stream)
        or body_size_error(encoded, get_settings().max_body_bytes)
    )
    if error is not None:
        raise InvalidEventError(error)
    params: dict[str, str | bytes | None] = {
        "stream": stream,
        "destination": destination,
        "body": encoded,
        "headers": json.dumps(all_headers),
        "message_id": None if message_id is None else str(message_id),
    }
    alias = using or router.db_for_write(OutboxEvent) or DEFAULT_DB_ALIAS
    connection = connections[alias]
    with connection.cursor() as cursor:
        if ordered:
            ordering.lock_stream(cursor, stream, connection)
            cursor.execute(query("insert_ordered_message"), params)
            row = cursor.fetchone()
            cursor.execute(query("notify_ordered"), {"stream": stream})
        else:
            cursor.execute(query("insert_message"), params)
            row = cursor.fetchone()
    inserted: uuid.UUID = row[0]
    return inserted
