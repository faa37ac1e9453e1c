"""OpenTelemetry tracing (extra ``otel``: opentelemetry-api), W3C trace context in headers.

- Producers (``send()``, ``@publish``, function events) store the current span's context in
  the event's headers, ``traceparent`` and ``tracestate`` (:func:`context_headers`), when a
  span is active. Headers the caller gives win.
- The relay records one ``pgoutbox publish`` span (kind PRODUCER) per batch, linked to the
  spans that wrote its messages (:func:`traced_publish`). The headers reach the broker with
  the message, unchanged, so consumers continue the producer's trace.
- A function event runs in a ``pgoutbox call`` span (kind CONSUMER) whose parent is the span
  that recorded it, whoever runs it: the producer's on-commit hook or a relay (:func:`call_span`).
- The ``subscribe`` consumer runs its callback in a ``pgoutbox process`` span (kind CONSUMER)
  whose parent is the message's context (:func:`consume_span`).

Without opentelemetry-api nothing here does anything. Spans are recorded only once the
application configured a tracer provider (``opentelemetry-sdk``'s, or a distribution's);
until then the relay pays one function call per batch and nothing per message. A
``traceparent`` a foreign producer got wrong is ignored (the span starts a new trace): it
never fails a publish or a callback.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

trace: Any
try:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the 'otel' extra is not installed
    trace = None

logger = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
PUBLISH_SPAN = "pgoutbox publish"
CALL_SPAN = "pgoutbox call"
PROCESS_SPAN = "pgoutbox process"
# W3C Trace Context: a tracestate longer than this may be dropped; we drop it rather than
# carry an oversized header on every message. A longer traceparent or tracestate received is
# ignored here, before OpenTelemetry's propagator would log a warning for every message.
MAX_TRACESTATE_CHARS = 512
_MAX_RECEIVED_CHARS = 512

_SCOPE = "pgoutbox"
_propagator: Any = TraceContextTextMapPropagator() if trace is not None else None
_tracer_of: tuple[Any, Any] = (None, None)  # (provider, its tracer), refreshed on a new provider

T = TypeVar("T")


def context_headers() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the current span; empty without a valid one."""
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    if len(carrier.get(TRACESTATE, "")) > MAX_TRACESTATE_CHARS:
        del carrier[TRACESTATE]
    return carrier


def _tracer() -> Any:
    """The tracer of the configured provider; None when none is configured (the API's proxy
    or no-op provider records nothing, so pgoutbox does no work for it)."""
    global _tracer_of
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    cached_provider, tracer = _tracer_of
    if cached_provider is not provider:
        tracer = provider.get_tracer(_SCOPE)
        _tracer_of = (provider, tracer)
    return tracer


def _extract(headers: Any) -> Any:
    """The context carried by stored or received headers (an empty context when they carry
    none, or a malformed one): never raises."""
    if not isinstance(headers, Mapping):
        return None
    carrier = {
        name: value
        for name in (TRACEPARENT, TRACESTATE)
        if isinstance(value := headers.get(name), str) and len(value) <= _MAX_RECEIVED_CHARS
    }
    if TRACEPARENT not in carrier:
        return None
    try:
        return _propagator.extract(carrier)
    except Exception:  # a propagator must not raise; a foreign header must not hurt us
        logger.debug("ignoring unreadable trace context %r", carrier, exc_info=True)
        return None


def _links(all_headers: Iterable[Mapping[str, Any]]) -> list[Any]:
    """One link per distinct valid producer span context (messages written under the same
    span share one link, read once). The SDK keeps at most ``OTEL_SPAN_LINK_COUNT_LIMIT``
    (128 by default) of them."""
    distinct: dict[Any, Mapping[str, Any]] = {}
    for headers in all_headers:
        traceparent = headers.get(TRACEPARENT)
        if isinstance(traceparent, str) and traceparent not in distinct:
            distinct[traceparent] = headers
    links: dict[tuple[int, int], Any] = {}
    for headers in distinct.values():
        context = _extract(headers)
        if context is None:
            continue
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            links.setdefault((span_context.trace_id, span_context.span_id), span_context)
    return [trace.Link(span_context) for span_context in links.values()]


def traced_publish(publish: Callable[[Sequence[Any]], T], messages: Sequence[Any]) -> T:
    """``publish(messages)`` inside a ``pgoutbox publish`` span (kind PRODUCER) linked to the
    messages' producers; without a configured tracer provider, just ``publish(messages)``.

    ``publish`` returns a :class:`~pgoutbox.transports.base.PublishOutcome`: its counts go on
    the span, and a batch that was not fully confirmed marks the span as an error.
    """
    tracer = _tracer() if messages else None
    if tracer is None:
        return publish(messages)
    destinations = {message.destination for message in messages}
    attributes: dict[str, Any] = {
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.batch.message_count": len(messages),
    }
    if len(destinations) == 1:
        attributes["messaging.destination.name"] = next(iter(destinations))
    with tracer.start_as_current_span(
        PUBLISH_SPAN,
        kind=trace.SpanKind.PRODUCER,
        links=_links(message.headers for message in messages),
        attributes=attributes,
    ) as span:
        outcome: Any = publish(messages)
        span.set_attribute("pgoutbox.confirmed", len(outcome.confirmed))
        failed = len(outcome.rejected) + len(outcome.unconfirmed)
        if failed:
            span.set_attribute("pgoutbox.failed", failed)
            description = outcome.failure or f"{failed} of {len(messages)} not confirmed"
            span.set_status(trace.Status(trace.StatusCode.ERROR, description))
    return outcome  # type: ignore[no-any-return]


def call_span(
    function: Callable[..., Any], headers: Any, *, event_id: int
) -> contextlib.AbstractContextManager[Any]:
    """A ``pgoutbox call`` span (kind CONSUMER) for running a function event, child of the
    context stored in its ``headers`` (without one, of the current span, if any); what the
    function raises is recorded on it and goes on. Does nothing without a configured tracer
    provider."""
    tracer = _tracer()
    if tracer is None:
        return contextlib.nullcontext()
    name = f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"
    return tracer.start_as_current_span(  # type: ignore[no-any-return]
        CALL_SPAN,
        context=_extract(headers),
        kind=trace.SpanKind.CONSUMER,
        attributes={"code.function.name": name, "pgoutbox.event_id": event_id},
    )


@contextlib.contextmanager
def consume_span(
    destination: str, headers: Mapping[str, str], *, message_id: str
) -> Iterator[None]:
    """Run the block in a ``pgoutbox process`` span (kind CONSUMER), child of the message's
    trace context (a malformed one starts a new trace); what the block raises is recorded on
    it and goes on. Does nothing without a configured tracer provider."""
    tracer = _tracer()
    if tracer is None:
        yield
        return
    with tracer.start_as_current_span(
        PROCESS_SPAN,
        context=_extract(headers),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.operation.type": "process",
            "messaging.destination.name": destination,
            "messaging.message.id": message_id,
        },
    ):
        yield
