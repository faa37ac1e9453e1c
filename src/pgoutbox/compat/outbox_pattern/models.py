"""``django_outbox_pattern.models``: ``Published`` for writing, as its README shows it
(``Published.objects.create(destination=..., body=...)`` inside your ``transaction.atomic()``);
``Received`` has a pgoutbox counterpart with another name and shape."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

from pgoutbox.compat.replaced import replaced_names
from pgoutbox.producer.encoding import OUTBOX_PATTERN

QUERIES_ADVICE = (
    "pgoutbox keeps no Published rows to query: pending events are "
    "pgoutbox.models.OutboxEvent rows (manage.py outbox_status), deleted once the broker has them"
)
FIELDS = ("id", "destination", "body", "headers", "version")


class Published:
    """A message for ``destination``, recorded with ``pgoutbox.send(...,
    compat="outbox-pattern")`` when saved: in the caller's transaction, with the ``dop-*``
    headers (``dop-msg-id`` is ``id``). ``version`` is appended to the destination
    (``destination.version``), as before.

    Only writing keeps its meaning: ``Published(...)`` takes ``id``, ``destination``, ``body``,
    ``headers`` and ``version`` (``TypeError`` naming any other field, such as ``status`` or
    ``retry``: pgoutbox's relay owns them), and ``Published.objects`` has ``create()`` only.
    """

    objects: ClassVar[PublishedWriter]

    def __init__(
        self,
        *,
        destination: str,
        body: Any,
        headers: dict[str, str] | None = None,
        version: str | None = None,
        id: uuid.UUID | None = None,
        **other: Any,
    ) -> None:
        if other:
            raise TypeError(
                f"Published() got {', '.join(sorted(other))}: pgoutbox's Published takes "
                f"{', '.join(FIELDS)} only; attempts and status belong to its relay"
            )
        if headers is not None and not isinstance(headers, Mapping):
            raise TypeError(
                f"Published() headers must be a dict of str to str, got "
                f"{type(headers).__name__} {headers!r}"
            )
        self.id = id or uuid.uuid4()
        self.destination = destination
        self.body = body
        self.headers = dict(headers or {})
        self.version = version
        self._saved = False

    def __str__(self) -> str:
        return f"{self.destination} - {self.body}"

    def save(self, using: str | None = None) -> None:
        """Record the message on ``using`` (default: the router's alias for outbox events);
        it is published if and only if the caller's transaction commits. Raises what
        ``pgoutbox.send()`` raises, before anything is written, and ``RuntimeError`` when
        saved twice."""
        from pgoutbox.producer.send import send  # needs the apps loaded; this module does not

        if self._saved:
            raise RuntimeError(f"Published {self.id} is already recorded; create another")
        destination = f"{self.destination}.{self.version}" if self.version else self.destination
        send(
            destination,
            self.body,
            headers=self.headers,
            using=using,
            message_id=self.id,
            compat=OUTBOX_PATTERN,
        )
        self.destination = destination
        self._saved = True


class PublishedWriter:
    """``Published.objects``: ``create()``; any other manager method raises, saying why."""

    def create(self, **fields: Any) -> Published:
        using = fields.pop("using", None)
        published = Published(**fields)
        published.save(using=using)
        return published

    def __getattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"Published.objects.{name}(): {QUERIES_ADVICE}")


Published.objects = PublishedWriter()

__getattr__ = replaced_names(
    __name__,
    {
        "Received": (
            "Payload.save() records the message in pgoutbox's inbox, "
            "pgoutbox.models.ReceivedMessage"
        ),
    },
)

__all__ = ["Published"]
