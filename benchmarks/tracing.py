"""What tracing costs the relay and producers, in this process, without I/O.

The relay's publish of a batch (``tracing.traced_publish`` around a publish that confirms
everything at once) and a producer's ``tracing.context_headers()``, each timed in three states:
OpenTelemetry absent (the module's state when the import failed), the API without a configured
tracer provider, and the SDK's provider exporting to nowhere. The messages of a batch carry the
``traceparent`` of a producer span each (the worst case: one link a message), or of one of 10.
"""

from __future__ import annotations

import functools
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from pgoutbox import tracing
from pgoutbox.transports.base import Message, PublishOutcome


class _Nowhere(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _batch(size: int, producers: int) -> list[Message]:
    parents = [f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01" for _ in range(producers)]
    return [
        Message(
            n,
            uuid.uuid4(),
            "/queue/bench",
            b"{}",
            {
                "content-type": "application/json",
                "traceparent": parents[n % producers],
            },
        )
        for n in range(size)
    ]


def _confirm_all(messages: Sequence[Message]) -> PublishOutcome:
    return PublishOutcome(frozenset(m.event_id for m in messages), {}, frozenset())


@contextmanager
def _state(name: str) -> Iterator[None]:
    saved = tracing.trace
    provider = None
    if name == "absent":
        tracing.trace = None
    elif name == "sdk":
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_Nowhere()))
        trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        tracing.trace = saved
        if provider is not None:
            provider.shutdown()


def _median_us(action: Callable[[], Any], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1e6)
    return statistics.median(timings)


def run_tracing(*, batch: int, repeats: int) -> dict[str, Any]:
    """Median microseconds per batch published and per producer call, in each state (the SDK
    state last: the API sets its global provider once per process)."""
    results = []
    for state in ("absent", "no-provider", "sdk"):
        with _state(state):
            with trace.get_tracer("bench").start_as_current_span("producer"):
                headers_us = _median_us(tracing.context_headers, repeats * 10)
            for producers in (batch, 10):
                messages = _batch(batch, producers)
                publish = functools.partial(tracing.traced_publish, _confirm_all, messages)
                publish_us = _median_us(publish, repeats)
                result = {
                    "state": state,
                    "producers_per_batch": producers,
                    "publish_batch_us": round(publish_us, 1),
                    "per_message_us": round(publish_us / batch, 3),
                    "producer_headers_us": round(headers_us, 2),
                }
                print(result, flush=True)
                results.append(result)
    return {"batch": batch, "repeats": repeats, "results": results}
