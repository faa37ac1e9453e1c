"""NATS JetStream transport on nats-py: every batch acked by the stream, duplicates dropped by it.

nats-py is asyncio; it runs on a private event-loop thread (:mod:`pgoutbox.transports.loop`).
A batch is published as one request per message, all written before any ``PubAck`` is
awaited, and the acks awaited together, so a batch costs one round trip however large it is.
(nats-py's ``publish_async`` is not used: when JetStream answers with an error, e.g. a full
stream, its future is never resolved, and the batch would wait for the timeout.)

Guarantees: a ``PubAck`` means the stream capturing the subject stored the message (on disk
for file storage, on a quorum of replicas for a replicated stream). Every publish carries
``Nats-Msg-Id: <message id>``: within the stream's duplicate window (two minutes unless
configured) JetStream stores a republished copy only once and acks it with ``duplicate``, so
the copies a killed relay republishes never reach the stream. A subject that no stream
captures has no responder: that is the event's failure (retried, dead after
``MAX_ATTEMPTS``), never a silent drop, as it would be with plain NATS publish.
"""

from __future__ import annotations

import asyncio
import logging
import re
from asyncio import FIRST_COMPLETED
from collections.abc import Sequence
from typing import Any

try:
    import nats
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client
except ImportError as exc:  # the extra is not installed
    raise ImportError(f"{__name__} needs nats-py: pip install 'pgoutbox[nats]'") from exc

from pgoutbox.conf import Settings
from pgoutbox.errors import TransportUnavailable
from pgoutbox.transports.base import MESSAGE_ID_HEADER, Message, PublishOutcome
from pgoutbox.transports.loop import LoopThread

logger = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"
_BAD_TOKEN = re.compile(r"[\s*>]")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII without ':'


def nats_subject(destination: str) -> str:
    """Map a destination to a subject: drop the leading ``/``, every other ``/`` becomes ``.``
    (``/orders.created`` → ``orders.created``, ``/queue/orders`` → ``queue.orders``).

    Raises ``ValueError`` naming the destination when the subject would have an empty token,
    white space or a wildcard (``*``, ``>``), which no publish may use.
    """
    if not destination.startswith("/"):
        raise ValueError(f"destination {destination!r} must start with '/'")
    subject = destination[1:].replace("/", ".")
    tokens = subject.split(".")
    if not subject or any(not token or _BAD_TOKEN.search(token) for token in tokens):
        raise ValueError(
            f"destination {destination!r} maps to the NATS subject {subject!r}, which is not "
            "publishable (empty token, white space or a wildcard)"
        )
    return subject


def nats_headers(message: Message) -> dict[str, str]:
    """The message's headers, its id under ``pgoutbox-message-id`` and ``Nats-Msg-Id``.

    Raises ``ValueError`` for a header NATS cannot carry (a name with ':' or white space, a
    value with a line break).
    """
    for name, value in message.headers.items():
        if not _HEADER_NAME.match(name) or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} cannot be carried by NATS")
    message_id = str(message.message_id)
    return {**message.headers, MESSAGE_ID_HEADER: message_id, MSG_ID_HEADER: message_id}


# Errors that say nothing about the message: the connection is gone or slow. Any other error is
# the message's own (too large, a header NATS refuses, a stream's refusal) and counts against it.
_LOST = (
    ConnectionError,
    TimeoutError,
    asyncio.CancelledError,
    nats.errors.ConnectionClosedError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoServersError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
)


class JetStreamTransport:
    """Publishes to NATS JetStream and waits for every ``PubAck``; see the module doc."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop = LoopThread("pgoutbox-nats")
        self._client: Client | None = None
        self._lost = asyncio.Event()  # set on the loop thread when the connection drops

    def __repr__(self) -> str:
        servers = [url.partition("://")[2].rpartition("@")[2] for url in self._servers()]
        return f"<JetStreamTransport {', '.join(servers)}>"

    def _servers(self) -> list[str]:
        return [url.strip() for url in self._settings.nats_url.split(",") if url.strip()]

    def open(self) -> None:
        client = self._client
        if (
            self._loop.running
            and client is not None
            and client.is_connected
            and not self._lost.is_set()
        ):
            return
        self.close()
        self._loop.start()
        timeout = self._settings.stomp_connect_timeout
        try:
            self._client = self._loop.run(self._connect(timeout), timeout + 1)
        except Exception as exc:
            self.close()
            raise TransportUnavailable(f"cannot connect to NATS: {exc!r}") from exc
        logger.info("connected to NATS", extra={"transport": repr(self)})

    async def _connect(self, timeout: float) -> Client:
        async def quiet(exc: Exception) -> None:
            # nats-py reports a lost connection here too; publish_batch reports it per batch.
            logger.debug("NATS client error: %r", exc)

        lost = self._lost = asyncio.Event()

        async def drop() -> None:
            lost.set()

        # No reconnection inside the client: a lost connection fails the batch in flight and
        # the relay reconnects with its own backoff, as with the other transports.
        return await nats.connect(
            servers=self._servers(),
            connect_timeout=timeout,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            error_cb=quiet,
            disconnected_cb=drop,
            closed_cb=drop,
        )

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop.running:
            try:
                self._loop.run(client.close(), 2.0)
            except Exception:
                logger.debug("NATS close failed", exc_info=True)
        self._loop.stop()

    def publish_batch(self, messages: Sequence[Message]) -> PublishOutcome:
        self.open()
        assert self._client is not None
        rejected: dict[int, str] = {}
        ready: list[tuple[Message, str, dict[str, str]]] = []
        for message in messages:
            try:
                ready.append((message, nats_subject(message.destination), nats_headers(message)))
            except ValueError as exc:
                rejected[message.event_id] = str(exc)
        timeout = self._settings.stomp_receipt_timeout
        try:
            acks = self._loop.run(self._publish(self._client, ready, timeout), timeout + 2)
        except Exception as exc:
            self.close()
            raise TransportUnavailable(f"NATS publish failed: {exc!r}") from exc
        confirmed = {event_id for event_id, error in acks.items() if error is None}
        failure: str | None = None
        for event_id, error in acks.items():
            if error is None:
                continue
            if isinstance(error, _LOST):
                failure = failure or f"NATS publish not acknowledged: {error!r}"
            elif isinstance(error, nats.js.errors.NoStreamResponseError):
                rejected[event_id] = "no JetStream stream captures this subject (no responders)"
            elif isinstance(error, nats.js.errors.APIError):
                rejected[event_id] = f"JetStream refused the message: {error}"
            else:  # this message's own fault (too large, bad header...): retrying it as is fails
                rejected[event_id] = f"NATS cannot publish the message: {error!r}"
        unconfirmed = frozenset(acks) - confirmed - rejected.keys()
        if unconfirmed:
            self.close()
        return PublishOutcome(
            confirmed=frozenset(confirmed),
            rejected=rejected,
            unconfirmed=unconfirmed,
            failure=failure if unconfirmed else None,
        )

    async def _publish(
        self, client: Client, ready: list[tuple[Message, str, dict[str, str]]], timeout: float
    ) -> dict[int, BaseException | None]:
        """Publish all, then await every PubAck together, until ``timeout`` or the connection
        is lost (whatever has no PubAck by then is reported as a ``ConnectionError``)."""
        js = client.jetstream(timeout=timeout)
        # Every publish is written before any PubAck is awaited: one round trip per batch.
        pending: dict[asyncio.Future[Any], int] = {
            asyncio.ensure_future(
                js.publish(subject, message.body, timeout=timeout, headers=headers)
            ): message.event_id
            for message, subject, headers in ready
        }
        if pending:
            every_ack: asyncio.Future[Any] = asyncio.gather(*pending, return_exceptions=True)
            lost: asyncio.Future[Any] = asyncio.ensure_future(self._lost.wait())
            await asyncio.wait({every_ack, lost}, timeout=timeout, return_when=FIRST_COMPLETED)
            lost.cancel()
            every_ack.cancel()  # cancels the publishes still waiting, if any
        why = "connection to NATS lost" if self._lost.is_set() else f"no PubAck in {timeout:g}s"
        results: dict[int, BaseException | None] = {}
        for future, event_id in pending.items():
            if not future.done() or future.cancelled():
                future.cancel()
                results[event_id] = ConnectionError(why)
            else:
                results[event_id] = future.exception()
        return results
