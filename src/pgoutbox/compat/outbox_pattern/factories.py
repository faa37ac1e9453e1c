"""``django_outbox_pattern.factories``: ``factory_producer()`` and ``factory_consumer()``.

The producer publishes at once, outside any transaction, as django-outbox-pattern's README
shows for sending "without the outbox table": use it only where losing the message with the
process is acceptable; ``pgoutbox.send()`` is the transactional way. Unlike the original, every
message carries a receipt: ``send_event`` returns once the broker has confirmed it, or raises.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from django.core.serializers.json import DjangoJSONEncoder

from pgoutbox import tracing
from pgoutbox.conf import Settings, get_settings
from pgoutbox.consumer.payload import Payload
from pgoutbox.consumer.subscriber import Subscriber
from pgoutbox.errors import InvalidEventError, SerializationError, TransportError
from pgoutbox.producer.encoding import JSON_CONTENT_TYPE, dop_headers
from pgoutbox.runner import build_transport
from pgoutbox.transports.base import Message, Transport
from pgoutbox.validation import body_size_error, destination_error, headers_error


class Producer:
    """A broker connection for direct, non-transactional publishing; a context manager that
    connects on entry and disconnects on exit."""

    def __init__(self, transport: Transport, settings: Settings) -> None:
        self._transport = transport
        self._settings = settings

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Connect; raises ``TransportUnavailable`` when the broker cannot be reached."""
        self._transport.open()

    def stop(self) -> None:
        """Disconnect; never raises."""
        self._transport.close()

    def send_event(self, body: Any, destination: str, **kwargs: Any) -> int:
        """Publish ``body`` (JSON-encoded with ``DjangoJSONEncoder``, as django-outbox-pattern
        does) to ``destination`` and wait for the broker's receipt.

        ``headers=`` and ``content_type=`` are taken as stomp.py takes them; other keyword
        arguments are headers. The ``dop-*`` headers are added (``dop-msg-id`` is the message's
        ``pgoutbox-message-id``), and with OpenTelemetry the current span's ``traceparent``
        (in a ``pgoutbox publish`` span). Returns 0, the number of failed attempts (the
        original retried on the same connection; here a failure raises ``TransportError`` at
        once). Raises ``InvalidEventError`` or ``SerializationError`` before sending anything.
        """
        headers = dict(kwargs.pop("headers", None) or {})
        content_type = kwargs.pop("content_type", None) or JSON_CONTENT_TYPE
        headers.update({str(k): v for k, v in kwargs.items()})
        message_id = uuid.uuid4()
        all_headers = {
            "content-type": content_type,
            **dop_headers(message_id, destination),
            **tracing.context_headers(),
            **headers,
        }
        try:
            encoded = json.dumps(body, cls=DjangoJSONEncoder, ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"event body is not JSON-serializable: {exc}") from exc
        error = (
            destination_error(destination)
            or headers_error(all_headers)
            or body_size_error(encoded, self._settings.max_body_bytes)
        )
        if error is not None:
            raise InvalidEventError(error)
        message = Message(0, message_id, destination, encoded, all_headers)
        outcome = tracing.traced_publish(self._transport.publish_batch, [message])
        if 0 not in outcome.confirmed:
            reason = outcome.rejected.get(0) or outcome.failure or "no receipt"
            raise TransportError(
                f"the broker did not confirm the message to {destination}: {reason}"
            )
        return 0

    def send(self, message: Any, **kwargs: Any) -> int:
        """Publish an object with ``body`` and ``destination`` attributes (what
        django-outbox-pattern's ``Published`` had) with :meth:`send_event`; keyword arguments
        override them."""
        fields = {"body": message.body, "destination": message.destination, **kwargs}
        return self.send_event(**fields)


def factory_producer() -> Producer:
    """Return a :class:`Producer` on the configured ``TRANSPORT``, not yet connected."""
    settings = get_settings()
    return Producer(build_transport(settings), settings)


class Consumer:
    """``start(callback, destination, queue_name)`` consumes in a background thread until
    ``stop()``; the callback gets a :class:`Payload`, as with ``manage.py subscribe``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscriber: Subscriber | None = None

    def start(
        self,
        callback: Callable[[Payload], object],
        destination: str,
        queue_name: str | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        """Subscribe and return once the subscription is active; raises ``TransportError`` if
        it is not within ``timeout`` seconds (the consumer keeps retrying until ``stop()``)."""
        if self._thread is not None:
            raise RuntimeError("this consumer is already started; call stop() first")
        self._stop.clear()
        subscriber = Subscriber(callback, destination, queue_name, settings=self._settings)
        self._subscriber = subscriber
        self._thread = threading.Thread(
            target=subscriber.run, args=(self._stop,), name=f"pgoutbox-consumer {destination}"
        )
        self._thread.start()
        if not subscriber.subscribed.wait(timeout):
            raise TransportError(f"no subscription to {destination} within {timeout:g}s")

    def is_connected(self) -> bool:
        return self._subscriber is not None and self._subscriber.subscribed.is_set()

    def stop(self) -> None:
        """Finish the message in hand, unsubscribe and disconnect."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()


def factory_consumer() -> Consumer:
    """Return a :class:`Consumer` on the configured broker, not yet started."""
    return Consumer(get_settings())


__all__ = ["Consumer", "Producer", "factory_consumer", "factory_producer"]
