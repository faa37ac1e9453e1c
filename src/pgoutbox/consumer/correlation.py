"""django-outbox-pattern's correlation id across a callback: ``dop-correlation-id`` becomes
``request_id_django_log``'s request id, so events the callback publishes carry it on (sagas).
Nothing happens when that package is not installed."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping

CORRELATION_HEADER = "dop-correlation-id"


@contextlib.contextmanager
def correlation_id(headers: Mapping[str, str]) -> Iterator[str | None]:
    """Set the request id to the message's ``dop-correlation-id`` (a new UUID when it has
    none) for the duration of the block, then reset it to None; yield it (None when
    ``request_id_django_log`` is not installed)."""
    try:
        from request_id_django_log import local_threading
    except ImportError:
        yield None
        return
    value = headers.get(CORRELATION_HEADER) or str(uuid.uuid4())
    local_threading.request_id = value
    try:
        yield value
    finally:
        local_threading.request_id = None
