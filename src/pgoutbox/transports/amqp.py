"""AMQP 0-9-1 transport (RabbitMQ) on aiormq: publisher confirms for a whole batch, pipelined.

Why aiormq, on a private event-loop thread (:mod:`pgoutbox.transports.loop`): a confirmed
publish is worth something only if the batch is not paid for in round trips. pika's
``BlockingConnection`` with ``confirm_delivery()`` makes every ``basic_publish`` wait for its
own ack (500 messages, 500 round trips); pipelining with pika means its callback-driven
``SelectConnection`` and hand-written bookkeeping of delivery tags and returns. aiormq (the
protocol core of aio-pika) keeps that bookkeeping itself: every publish on a confirming
channel gets a future resolved by the broker's ``basic.ack`` (also ``multiple`` acks), failed
by a ``basic.nack``, or failed by a ``basic.return`` matched to the publish through its
``message_id`` property, which is the event's unique id here. The batch is written in one go
and the futures awaited together, so a batch costs one round trip however large it is. The
NATS transport uses the same loop thread.

Guarantees: every publish is ``mandatory``; an unroutable message comes back and is that
event's failure (retried with backoff, dead after ``MAX_ATTEMPTS``), never "confirmed and
dropped". A confirm means RabbitMQ routed the message to every bound queue and, for a
persistent message to a durable queue, wrote it to disk (quorum queues: a majority did).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

try:
    import aiormq
    import aiormq.exceptions
    from aiormq.abc import AbstractChannel
    from pamqp import commands as spec
except ImportError as exc:  # the extra is not installed
    raise ImportError(f"{__name__} needs aiormq: pip install 'pgoutbox[amqp]'") from exc

from pgoutbox.conf import Settings
from pgoutbox.errors import TransportUnavailable
from pgoutbox.transports.base import MESSAGE_ID_HEADER, Message, PublishOutcome
from pgoutbox.transports.loop import LoopThread

logger = logging.getLogger(__name__)

_MAX_NAME_BYTES = 255  # AMQP short strings: exchange names, routing keys, queue names


@dataclass(frozen=True)
class Route:
    """Where a destination goes in AMQP terms.

    ``queue`` is set for ``/queue/<q>``: that queue is declared (durable) if it does not
    exist, as RabbitMQ's STOMP plugin does for a SEND to the same destination.
    """

    exchange: str
    routing_key: str
    queue: str | None = None


def _name(text: str, what: str, destination: str) -> str:
    # As in RabbitMQ's STOMP plugin, a '/' inside a name is written %2F.
    name = text.replace("%2F", "/").replace("%2f", "/")
    if len(name.encode()) > _MAX_NAME_BYTES:
        raise ValueError(f"{what} in {destination!r} is longer than {_MAX_NAME_BYTES} bytes")
    return name


def amqp_route(destination: str) -> Route:
    """Map a STOMP-style destination to an exchange and routing key, as RabbitMQ's STOMP
    plugin does, so the same strings work with either transport:

    - ``/queue/<q>``: default exchange, routing key ``<q>`` (the queue is declared if missing)
    - ``/amq/queue/<q>``: default exchange, routing key ``<q>`` (never declared)
    - ``/topic/<key>``: exchange ``amq.topic``, routing key ``<key>``
    - ``/exchange/<x>`` or ``/exchange/<x>/<routing key>``

    Raises ``ValueError`` naming the destination for anything else.
    """
    kind, _, rest = destination.removeprefix("/").partition("/")
    if kind == "queue" and rest and "/" not in rest:
        queue = _name(rest, "queue name", destination)
        return Route("", queue, queue=queue)
    if kind == "amq" and rest.startswith("queue/") and len(rest) > len("queue/"):
        queue = rest.removeprefix("queue/")
        if "/" not in queue:
            return Route("", _name(queue, "queue name", destination))
    if kind == "topic" and rest:
        return Route("amq.topic", _name(rest, "routing key", destination))
    if kind == "exchange" and rest:
        exchange, _, key = rest.partition("/")
        if exchange:
            return Route(
                _name(exchange, "exchange name", destination),
                _name(key, "routing key", destination),
            )
    raise ValueError(
        f"destination {destination!r} has no AMQP meaning: use /queue/<q>, /amq/queue/<q>, "
        "/topic/<key> or /exchange/<exchange>/<routing key>"
    )


def properties(message: Message, *, persistent: bool) -> spec.Basic.Properties:
    """The AMQP properties of a message: its id as ``message_id`` (and in the headers),
    ``content-type`` as ``content_type``, every other header as an AMQP header."""
    headers: dict[str, Any] = {
        name: value for name, value in message.headers.items() if name.lower() != "content-type"
    }
    headers[MESSAGE_ID_HEADER] = str(message.message_id)
    content_type = next(
        (value for name, value in message.headers.items() if name.lower() == "content-type"),
        None,
    )
    return spec.Basic.Properties(
        message_id=str(message.message_id),
        content_type=content_type,
        delivery_mode=2 if persistent else 1,
        headers=headers,
    )


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context of an ``amqps://`` URL: the system's trust store unless
    ``AMQP_SSL_CA_CERTS`` names one, a client certificate when ``AMQP_SSL_CERT_FILE`` is set."""
    context = ssl.create_default_context(cafile=settings.amqp_ssl_ca_certs)
    if settings.amqp_ssl_cert_file:
        context.load_cert_chain(
            settings.amqp_ssl_cert_file,
            settings.amqp_ssl_key_file,
            settings.amqp_ssl_password,
        )
    return context


class AmqpTransport:
    """Publishes to RabbitMQ over AMQP 0-9-1 with publisher confirms; see the module doc."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop = LoopThread("pgoutbox-amqp")
        self._connection: aiormq.Connection | None = None
        self._channel: AbstractChannel | None = None
        self._exists: set[tuple[str, str]] = set()  # (kind, name) checked on this connection

    def __repr__(self) -> str:
        url = self._settings.amqp_url
        scheme, _, rest = url.partition("://")
        return f"<AmqpTransport {scheme}://{rest.rpartition('@')[2]}>"

    def open(self) -> None:
        if self._usable():
            return
        self.close()
        self._loop.start()
        timeout = self._settings.stomp_connect_timeout
        try:
            self._loop.run(self._connect(), timeout + 1)
        except Exception as exc:
            self.close()
            raise TransportUnavailable(f"cannot connect to the AMQP broker: {exc!r}") from exc
        logger.info("connected to AMQP broker", extra={"transport": repr(self)})

    def _usable(self) -> bool:
        return (
            self._loop.running
            and self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def _connect(self) -> None:
        url = self._settings.amqp_url
        context = tls_context(self._settings) if url.startswith("amqps://") else None
        connection = aiormq.Connection(url, context=context)
        async with asyncio.timeout(self._settings.stomp_connect_timeout):
            await connection.connect()
            self._connection = connection
            self._channel = await connection.channel(publisher_confirms=True)
        self._exists.clear()

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and self._loop.running:
            try:
                self._loop.run(connection.close(), 2.0)
            except Exception:
                logger.debug("AMQP close failed", exc_info=True)
        self._loop.stop()

    def publish_batch(self, messages: Sequence[Message]) -> PublishOutcome:
        self.open()
        rejected: dict[int, str] = {}
        routes: dict[int, Route] = {}
        for message in messages:
            try:
                routes[message.event_id] = amqp_route(message.destination)
            except ValueError as exc:
                rejected[message.event_id] = str(exc)
        timeout = self._settings.stomp_receipt_timeout
        try:
            outcomes = self._loop.run(self._publish(messages, routes, timeout), timeout + 2)
        except Exception as exc:
            self.close()
            raise TransportUnavailable(f"AMQP publish failed: {exc!r}") from exc
        confirmed: set[int] = set()
        failure: str | None = None
        for event_id, outcome in outcomes.items():
            if outcome is None:
                confirmed.add(event_id)
            elif isinstance(outcome, _Refused):
                rejected[event_id] = outcome.reason
            else:
                failure = failure or outcome.reason
        unconfirmed = frozenset(routes) - confirmed - rejected.keys()
        if unconfirmed or not self._usable():
            self.close()
        return PublishOutcome(
            confirmed=frozenset(confirmed),
            rejected=rejected,
            unconfirmed=unconfirmed,
            failure=(failure or "connection to the AMQP broker lost") if unconfirmed else None,
        )

    async def _publish(
        self, messages: Sequence[Message], routes: dict[int, Route], timeout: float
    ) -> dict[int, _Refused | _Lost | None]:
        """Publish every routed message, then wait for all confirms at once (``timeout``)."""
        # The concrete channel: its basic_publish can return before the frame is written.
        channel = cast(aiormq.Channel, self._channel)
        outcomes: dict[int, _Refused | _Lost | None] = {}
        deadline = asyncio.get_running_loop().time() + timeout
        async with asyncio.timeout_at(deadline):
            refusals = await self._check_targets(set(routes.values()))
        persistent = self._settings.stomp_persistent
        sent: dict[asyncio.Task[Any], int] = {}
        for message in messages:
            route = routes.get(message.event_id)
            if route is None:
                continue
            refusal = refusals.get(route)
            if refusal is not None:
                outcomes[message.event_id] = _Refused(refusal)
                continue
            publish = channel.basic_publish(
                message.body,
                exchange=route.exchange,
                routing_key=route.routing_key,
                properties=properties(message, persistent=persistent),
                mandatory=True,
                wait=False,
            )
            sent[asyncio.ensure_future(publish)] = message.event_id
        if not sent:
            return outcomes
        left = max(0.0, deadline - asyncio.get_running_loop().time())
        done, pending = await asyncio.wait(sent, timeout=left)
        for task in pending:
            task.cancel()
            outcomes[sent[task]] = _Lost(f"no publisher confirm within {timeout:g}s")
        for task in done:
            outcomes[sent[task]] = _judge(task)
        return outcomes

    async def _check_targets(self, routes: set[Route]) -> dict[Route, str]:
        """Make sure the exchanges and ``/queue/`` queues exist before publishing.

        A publish to a missing exchange closes the whole channel (every message in flight with
        it); a passive declare on a side channel finds that first. What exists is remembered
        for the connection; a refusal is not, so an exchange created later is found by the
        event's next try. A missing ``/queue/<q>`` is declared durable, as the STOMP plugin
        does. Returns the routes that cannot be published to, with the broker's reason.
        """
        wanted = {("exchange", r.exchange) for r in routes if r.exchange}
        wanted |= {("queue", r.queue) for r in routes if r.queue is not None}
        refused: dict[tuple[str, str], str] = {}
        unchecked = sorted(wanted - self._exists)
        if unchecked:
            assert self._connection is not None
            side = await self._connection.channel()
            for kind, name in unchecked:
                side, refusal = await _check(side, self._connection, kind, name)
                if refusal is None:
                    self._exists.add((kind, name))
                else:
                    refused[(kind, name)] = refusal
            if not side.is_closed:
                await side.close()
        refusals = {}
        for route in routes:
            refusal = refused.get(("exchange", route.exchange)) or refused.get(
                ("queue", route.queue or "")
            )
            if refusal is not None:
                refusals[route] = refusal
        return refusals


async def _check(
    side: AbstractChannel, connection: aiormq.Connection, kind: str, name: str
) -> tuple[AbstractChannel, str | None]:
    """Passively declare one exchange or queue on ``side``; declare a missing queue durable.
    Returns the channel to go on with (a refusal closes ``side``) and the refusal, if any."""
    try:
        if kind == "exchange":
            await side.exchange_declare(name, passive=True)
        else:
            await side.queue_declare(name, passive=True)
        return side, None
    except aiormq.exceptions.ChannelNotFoundEntity as exc:
        side = await connection.channel()
        if kind == "exchange":
            return side, _reason(exc)
    except aiormq.exceptions.ChannelClosed as exc:  # e.g. ACCESS_REFUSED
        return await connection.channel(), _reason(exc)
    try:
        await side.queue_declare(name, durable=True)
        return side, None
    except aiormq.exceptions.ChannelClosed as exc:
        return await connection.channel(), _reason(exc)


@dataclass(frozen=True)
class _Refused:
    """The broker refused this message (returned or nacked): the event's own failure."""

    reason: str


@dataclass(frozen=True)
class _Lost:
    """No answer for this message (connection or channel lost, timeout)."""

    reason: str


# Errors that say nothing about the message: the connection or channel is gone. Any other
# error is the message's own (it cannot be encoded...) and counts against it.
_LOST = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelClosed,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    TimeoutError,
    asyncio.CancelledError,
)


def _judge(task: asyncio.Task[Any]) -> _Refused | _Lost | None:
    if task.cancelled():
        return _Lost("AMQP publish cancelled")
    exc = task.exception()
    if exc is None:
        return None
    if isinstance(exc, aiormq.exceptions.PublishError):
        frame: Any = exc.frame  # a basic.return
        return _Refused(
            f"unroutable, returned by the broker ({frame.reply_code} {frame.reply_text}): "
            f"exchange {frame.exchange!r}, routing key {frame.routing_key!r}"
        )
    if isinstance(exc, aiormq.exceptions.DeliveryError):
        return _Refused(f"the broker nacked the message: {exc!r}")
    if isinstance(exc, _LOST):
        return _Lost(f"AMQP publish not confirmed: {_reason(exc)}")
    return _Refused(f"the message cannot be published: {exc!r}")


def _reason(exc: BaseException) -> str:
    return " ".join(str(arg) for arg in exc.args) or repr(exc)
