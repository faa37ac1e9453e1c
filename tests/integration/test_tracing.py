"""OpenTelemetry against the real PostgreSQL and brokers, spans exported to memory: the trace
goes from the producer's span through the event's headers and the relay's publish span to the
consumer's span, and function events run in a child of the span that recorded them."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

import pgoutbox
from pgoutbox import testing, tracing
from pgoutbox.compat.outbox_pattern.factories import factory_producer
from pgoutbox.consumer.payload import Payload
from pgoutbox.consumer.subscriber import Subscriber
from pgoutbox.models import OutboxEvent
from pgoutbox.producer import functions
from pgoutbox.runner import build_relay
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox
from tests.app.models import Invoice
from tests.support.consumer import SubscriberThread, send_raw
from tests.support.function_events import pgoutbox_settings, wait_until
from tests.support.relay_runner import ROOT, manage_env
from tests.support.tracing import in_memory_tracing, named

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("runs")]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with in_memory_tracing() as exporter:
        yield exporter


def traceparent_of(span: Any) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def ids(context: SpanContext) -> tuple[int, int]:
    return context.trace_id, context.span_id


def headers_of(message_id: Any) -> dict[str, str]:
    return OutboxEvent.objects.get(message_id=message_id).headers


class Seen:
    """What a subscribe callback saw: each payload and the span context it ran in."""

    def __init__(self) -> None:
        self.calls: list[tuple[Payload, SpanContext]] = []
        self.lock = threading.Lock()

    def __call__(self, payload: Payload) -> None:
        with transaction.atomic():
            payload.save()
        with self.lock:
            self.calls.append((payload, trace.get_current_span().get_span_context()))


@pytest.fixture
def subscribed(stomp_broker, queue_name) -> Iterator[tuple[Seen, str]]:
    """A subscribe consumer of ``/queue/<fresh queue>`` in a thread, until teardown."""
    seen = Seen()
    destination = f"/queue/{queue_name}"
    thread = SubscriberThread(Subscriber(seen, destination)).start()
    yield seen, destination
    thread.stop()


# -- producers -------------------------------------------------------------------------------


def test_send_stores_the_current_span_context_and_the_callers_headers_win(spans):
    tracer = trace.get_tracer("tests")
    assert "traceparent" not in headers_of(pgoutbox.send("/queue/t", "no span"))
    with tracer.start_as_current_span("checkout") as span:
        traced = pgoutbox.send("/queue/t", {"n": 1})
        own = pgoutbox.send("/queue/t", "x", headers={"traceparent": "00-mine"})
        compat = pgoutbox.send("/queue/t", "x", compat="outbox-pattern")
    assert headers_of(traced)["traceparent"] == traceparent_of(span)
    assert "tracestate" not in headers_of(traced)  # an empty trace state is not sent
    assert headers_of(own)["traceparent"] == "00-mine"
    assert headers_of(compat)["traceparent"] == traceparent_of(span)
    assert headers_of(compat)["dop-msg-id"]  # the outbox-pattern headers are still there


def test_model_events_carry_the_span_that_saved_the_model(spans):
    with trace.get_tracer("tests").start_as_current_span("invoice") as span:
        Invoice.objects.create(reference="t-1")
    rows = list(OutboxEvent.objects.order_by("id"))
    assert len(rows) == 3  # one per Config of @publish
    assert {row.headers["traceparent"] for row in rows} == {traceparent_of(span)}


def test_a_long_tracestate_is_dropped_the_traceparent_kept(spans):
    def headers_under(state: TraceState) -> dict[str, str]:
        parent = SpanContext(0x1234, 0x5678, True, TraceFlags(TraceFlags.SAMPLED), state)
        with trace.use_span(NonRecordingSpan(parent)):
            return tracing.context_headers()

    long_state = headers_under(TraceState([(f"vendor{n}", "v" * 200) for n in range(3)]))
    short_state = headers_under(TraceState([("vendor0", "short")]))
    assert long_state == {"traceparent": f"00-{0x1234:032x}-{0x5678:016x}-01"}
    assert short_state["tracestate"] == "vendor0=short"


# -- the relay and the consumer ------------------------------------------------------------


def test_a_trace_goes_from_the_producer_through_the_relay_to_the_consumer(
    spans, subscribed, relay_thread
):
    seen, destination = subscribed
    with trace.get_tracer("tests").start_as_current_span("checkout") as producer:
        message_id = pgoutbox.send(destination, {"order": 7})
    relay_thread()
    wait_until(lambda: seen.calls)
    wait_until(lambda: named(spans, tracing.PROCESS_SPAN))
    [(payload, callback_context)] = seen.calls
    assert payload.headers["traceparent"] == traceparent_of(producer)
    assert payload.message_id == str(message_id)

    produced = producer.get_span_context()
    [publish] = [
        s
        for s in named(spans, tracing.PUBLISH_SPAN)
        if ids(produced) in [ids(link.context) for link in s.links]
    ]
    assert publish.kind is SpanKind.PRODUCER
    assert publish.attributes["messaging.destination.name"] == destination
    assert publish.attributes["pgoutbox.confirmed"] == 1
    assert publish.status.is_ok

    [process] = named(spans, tracing.PROCESS_SPAN)
    assert process.kind is SpanKind.CONSUMER
    assert process.parent is not None and process.parent.span_id == produced.span_id
    assert process.context.trace_id == produced.trace_id
    assert process.attributes["messaging.message.id"] == str(message_id)
    assert callback_context == process.context  # the callback runs inside the span


def test_the_publish_span_links_each_producer_once(spans):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("first") as first:
        for n in range(3):
            pgoutbox.send("/queue/a", {"n": n})
    with tracer.start_as_current_span("second") as second:
        pgoutbox.send("/queue/b", "x")
    pgoutbox.send("/queue/b", "untraced")
    transport = MemoryTransport()
    assert build_relay(listen=False, transport=transport).drain_once() == 5
    [publish] = named(spans, tracing.PUBLISH_SPAN)
    assert [ids(link.context) for link in publish.links] == [
        ids(first.get_span_context()),
        ids(second.get_span_context()),
    ]
    assert publish.attributes["messaging.batch.message_count"] == 5
    assert "messaging.destination.name" not in publish.attributes  # two destinations


def test_the_headers_reach_every_broker(
    spans, stomp_consumer, amqp_broker, nats_broker, jetstream_sink
):
    """They are headers like any other: STOMP, AMQP and JetStream carry them unchanged."""
    tracer = trace.get_tracer("tests")
    stomp_sink = stomp_consumer()
    amqp_sink = stomp_consumer()  # AMQP's /topic/<key> is where a STOMP subscriber listens
    nats_sink = jetstream_sink()
    nats_sink.keep_headers = True
    routes = [
        ({"TRANSPORT": "pgoutbox.transports.stomp.StompTransport"}, stomp_sink.destination),
        (
            {"TRANSPORT": "pgoutbox.transports.amqp.AmqpTransport", "AMQP_URL": amqp_broker},
            amqp_sink.destination,
        ),
        (
            {
                "TRANSPORT": "pgoutbox.transports.nats.JetStreamTransport",
                "NATS_URL": nats_broker,
            },
            nats_sink.destination,
        ),
    ]
    sent = {}
    for overrides, destination in routes:
        with tracer.start_as_current_span(destination) as span:
            message_id = pgoutbox.send(destination, "traced", stream=destination)
        sent[destination] = (str(message_id), traceparent_of(span))
        with pgoutbox_settings(**overrides):
            assert build_relay(listen=False, streams=[destination]).drain_once() == 1
    for sink in (stomp_sink, amqp_sink):
        [received] = sink.wait_for(1)
        assert received.headers["traceparent"] == sent[sink.destination][1]
    message_id, parent = sent[nats_sink.destination]
    assert not nats_sink.wait_for_ids({message_id}, timeout=10)
    assert nats_sink.headers[message_id]["traceparent"] == parent


def test_garbage_from_foreign_producers_fails_neither_the_relay_nor_the_consumer(
    spans, subscribed, relay_thread, stomp_broker, caplog
):
    seen, destination = subscribed
    garbage = [
        {"traceparent": "garbage", "tracestate": "=,=,=="},
        {"traceparent": "00-" + "f" * 10_000},
        {"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"},
        {"tracestate": "only=state"},
        {},
    ]
    with connection.cursor() as cursor:  # a plain-SQL producer
        for headers in garbage:
            cursor.execute(
                "INSERT INTO pgoutbox_event (destination, body, headers) VALUES (%s, %s, %s)",
                [destination, "foreign", json.dumps(headers)],
            )
    send_raw(stomp_broker, destination, "by stomp.py", {"traceparent": "01-zz-yy-xx"})
    relay_thread()
    wait_until(lambda: len(seen.calls) == len(garbage) + 1)
    wait_until(lambda: len(named(spans, tracing.PROCESS_SPAN)) == len(garbage) + 1)
    assert OutboxEvent.objects.count() == 0  # every one published and deleted, none dead
    processed = named(spans, tracing.PROCESS_SPAN)
    assert all(span.parent is None for span in processed)  # each one a new trace
    assert all(span.status.is_ok for span in processed)
    publishes = named(spans, tracing.PUBLISH_SPAN)
    assert publishes and all(not span.links for span in publishes)
    assert "exceeded the maximum length" not in caplog.text  # not a warning a message


def test_an_oversized_tracestate_is_ignored_the_traceparent_kept(caplog):
    parent = f"00-{7:032x}-{9:016x}-01"
    context = tracing._extract({"traceparent": parent, "tracestate": "a=" + "b" * 600})
    span_context = trace.get_current_span(context).get_span_context()
    assert (span_context.trace_id, span_context.span_id) == (7, 9)
    assert not span_context.trace_state
    assert tracing._extract({"tracestate": "a=b"}) is None  # no traceparent: no context
    assert "exceeded" not in caplog.text


def test_a_callback_that_raises_marks_its_span_and_is_still_dead_lettered(
    spans, stomp_broker, queue_name, relay_thread
):
    def fails(payload: Payload) -> None:
        raise ValueError("bad order")

    thread = SubscriberThread(Subscriber(fails, f"/queue/{queue_name}")).start()
    try:
        with trace.get_tracer("tests").start_as_current_span("checkout"):
            pgoutbox.send(f"/queue/{queue_name}", {"order": 1})
        relay_thread()
        [process] = wait_until(lambda: named(spans, tracing.PROCESS_SPAN))
    finally:
        thread.stop()
    assert not process.status.is_ok
    assert [event.name for event in process.events] == ["exception"]


# -- function events -----------------------------------------------------------------------


def test_a_function_event_run_after_commit_is_a_child_of_the_span_that_recorded_it(spans):
    with transaction.atomic():
        with trace.get_tracer("tests").start_as_current_span("order") as producer:
            outbox.traced("after-commit")
        [row] = OutboxEvent.objects.all()
        assert row.headers == {"traceparent": traceparent_of(producer)}
    # The hook ran at COMMIT, outside the producer's span: the parent came from the row.
    [run] = outbox.runs("traced")
    [call] = named(spans, tracing.CALL_SPAN)
    assert call.kind is SpanKind.CONSUMER
    assert call.parent is not None and call.parent.span_id == producer.get_span_context().span_id
    assert call.context.trace_id == producer.get_span_context().trace_id
    assert (run.kwargs["trace_id"], run.kwargs["span_id"]) == (
        call.context.trace_id,
        call.context.span_id,
    )
    assert call.attributes["code.function.name"] == "tests.app.outbox.traced"


def test_a_function_event_run_by_the_relay_is_a_child_of_the_span_that_recorded_it(
    spans, monkeypatch, relay_thread
):
    monkeypatch.setattr(functions, "_run_after_commit_enabled", False)  # the producer dies
    with pgoutbox_settings(PUBLISH_ON_COMMIT_LEASE=0.05):
        with trace.get_tracer("tests").start_as_current_span("order") as producer:
            outbox.traced("by-relay")
        relay_thread(transport=MemoryTransport())
        [run] = wait_until(lambda: outbox.runs("traced"))
    assert run.thread == "pgoutbox-calls"
    [call] = wait_until(lambda: named(spans, tracing.CALL_SPAN))
    assert call.parent is not None and call.parent.span_id == producer.get_span_context().span_id
    assert run.kwargs["span_id"] == call.context.span_id


def test_a_failing_function_event_marks_its_span(spans, signal_log):
    with trace.get_tracer("tests").start_as_current_span("order"):
        outbox.always_fails("x")
    [call] = named(spans, tracing.CALL_SPAN)
    assert not call.status.is_ok
    assert signal_log.names() == ["event_failed_to_publish"]  # the failure is recorded as ever


def test_a_call_row_with_foreign_headers_still_runs(spans, relay_thread):
    with connection.cursor() as cursor:
        for headers in ('{"traceparent": 5}', '["not", "an", "object"]', '{"traceparent": "x"}'):
            cursor.execute(
                "INSERT INTO pgoutbox_event (kind, function, args, headers)"
                " VALUES ('call', 'tests.app.outbox.traced', %s, %s::jsonb)",
                ['{"args": ["foreign"], "kwargs": {}}', headers],
            )
    relay_thread(transport=MemoryTransport())
    wait_until(lambda: len(outbox.runs("traced")) == 3)
    wait_until(lambda: len(named(spans, tracing.CALL_SPAN)) == 3)
    assert all(span.parent is None for span in named(spans, tracing.CALL_SPAN))
    wait_until(lambda: not OutboxEvent.objects.exists())  # each one done


# -- without a tracer provider, without OpenTelemetry --------------------------------------


def test_without_a_tracer_provider_nothing_is_stored_and_no_header_is_read(monkeypatch):
    """The API alone (no SDK configured): producers' spans are not valid, so no header is
    written; the relay never looks at a message's headers for tracing."""
    with trace.get_tracer("tests").start_as_current_span("not recorded"):
        message_id = pgoutbox.send("/queue/t", "x")
    assert "traceparent" not in headers_of(message_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO pgoutbox_event (destination, body, headers) VALUES ('/queue/t', 'x', %s)",
            [json.dumps({"traceparent": f"00-{1:032x}-{1:016x}-01"})],
        )

    def must_not_run(*args: Any) -> None:
        raise AssertionError("tracing work without a tracer provider")

    monkeypatch.setattr(tracing, "_links", must_not_run)
    monkeypatch.setattr(tracing, "_extract", must_not_run)
    transport = MemoryTransport()
    assert build_relay(listen=False, transport=transport).drain_once() == 2
    assert transport.deliveries[1].message.headers["traceparent"] == f"00-{1:032x}-{1:016x}-01"
    outbox.notify("no provider")  # the on-commit run takes no span either
    assert outbox.runs("notify")


_WITHOUT_OPENTELEMETRY = """
import json, sys
sys.modules["opentelemetry"] = None  # as if the 'otel' extra were not installed
import django
django.setup()
from django.db import transaction
import pgoutbox
from pgoutbox import testing, tracing
from pgoutbox.models import OutboxEvent
from pgoutbox.runner import build_relay
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox

with transaction.atomic():
    message_id = pgoutbox.send("/queue/t", {"n": 1})
    outbox.notify("ran")
headers = OutboxEvent.objects.get(message_id=message_id).headers
relay = build_relay(listen=False, transport=MemoryTransport())
with tracing.consume_span("/queue/t", headers, message_id=str(message_id)):
    consumed = True
loaded = sorted(
    name for name, module in sys.modules.items()
    if name.split(".")[0] == "opentelemetry" and module is not None
)
print(json.dumps({
    "trace": tracing.trace is None, "headers": headers, "relayed": relay.drain_once(),
    "ran": [run.args for run in outbox.runs("notify")], "consumed": consumed, "loaded": loaded,
}))
"""


def test_without_opentelemetry_everything_works_and_nothing_is_imported():
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OPENTELEMETRY],
        env=manage_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "trace": True,
        "headers": {"content-type": "application/json"},
        "relayed": 1,
        "ran": [["ran"]],
        "consumed": True,
        "loaded": [],
    }


def test_drain_traces_as_the_relay_does(spans):
    with trace.get_tracer("tests").start_as_current_span("order") as producer:
        pgoutbox.send("/queue/t", "x")
        outbox.traced("drained")  # autocommit: the on-commit hook runs it now
    functions_run = outbox.runs("traced")
    assert len(functions_run) == 1
    with transaction.atomic():
        with trace.get_tracer("tests").start_as_current_span("later") as later:
            outbox.traced("in a test transaction")
        testing.drain()
    [publish] = named(spans, tracing.PUBLISH_SPAN)
    assert [ids(link.context) for link in publish.links] == [ids(producer.get_span_context())]
    parents = [span.parent.span_id for span in named(spans, tracing.CALL_SPAN) if span.parent]
    assert parents == [producer.get_span_context().span_id, later.get_span_context().span_id]


def test_keep_order_calls_store_the_context_too(spans):
    with trace.get_tracer("tests").start_as_current_span("order") as producer:
        outbox.notify_ordered("k")
    [row] = OutboxEvent.objects.all()
    assert row.headers == {"traceparent": traceparent_of(producer)}


def test_outbox_patterns_direct_producer_carries_the_context(spans, stomp_consumer):
    consumer = stomp_consumer()
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("direct") as producer, factory_producer() as direct:
        direct.send_event({"n": 1}, consumer.destination)
    [received] = consumer.wait_for(1)
    assert received.headers["traceparent"] == traceparent_of(producer)
    [publish] = named(spans, tracing.PUBLISH_SPAN)
    assert publish.parent is not None and publish.parent.span_id == ids(producer.context)[1]
