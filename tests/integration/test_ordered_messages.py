"""Ordered message streams (``send(..., stream=..., ordered=True)``, ``Config(ordered=True)``,
plain-SQL rows with ``ordered = true``): published in commit order, one relay at a time per
stream, a failing head handled as ``KEEP_ORDER_POISON_POLICY`` says."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

import psycopg
import pytest
from django.db import IntegrityError, connection, models, transaction

import pgoutbox
from pgoutbox import db
from pgoutbox.conf import get_settings
from pgoutbox.errors import InvalidEventError
from pgoutbox.models import OutboxEvent
from pgoutbox.relay.ordered_messages import OrderedMessages
from pgoutbox.relay.store import MessageStore
from pgoutbox.runner import build_relay
from pgoutbox.sql import migrations_dir, query
from pgoutbox.transports.amqp import AmqpTransport
from pgoutbox.transports.base import PublishOutcome
from pgoutbox.transports.memory import MemoryTransport
from tests.app.models import Order
from tests.support.broker_fixtures import TRANSPORTS
from tests.support.function_events import pgoutbox_settings, run_producers, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _bodies(transport: MemoryTransport) -> list[dict[str, Any]]:
    return [json.loads(d.message.body) for d in transport.deliveries]


def _per_stream(bodies: list[dict[str, Any]]) -> dict[str, list[Any]]:
    streams: dict[str, list[Any]] = defaultdict(list)
    for body in bodies:
        streams[body["stream"]].append(body["n"])
    return dict(streams)


# -- the producer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"ordered": True}, "ordered=True needs a stream"),
        ({"ordered": True, "stream": ""}, "ordered=True needs a stream"),
        ({"ordered": "yes", "stream": "s"}, "ordered must be a bool"),
    ],
)
def test_bad_ordered_arguments_raise_before_anything_is_written(kwargs, error):
    with pytest.raises(InvalidEventError, match=error):
        pgoutbox.send("/queue/x", "body", **kwargs)
    assert not OutboxEvent.objects.exists()


def test_an_ordered_message_is_stored_ordered_and_left_to_the_ordered_claim():
    pgoutbox.send("/queue/x", "plain", stream="s")
    ordered_id = pgoutbox.send("/queue/x", "ordered", stream="s", ordered=True)
    assert OutboxEvent.objects.get(message_id=ordered_id).ordered
    settings = get_settings()
    store = MessageStore(db.connect(db.connection_params("default"), autocommit=False))
    try:
        claim = store.claim_batch([], 10, settings.max_batch_bytes)
        assert [bytes(r.body) for r in claim.rows] == [b"plain"]
    finally:
        store.conn.close()


def test_producers_of_one_ordered_stream_commit_one_after_the_other():
    """The first producer's transaction holds the stream until it ends: a second producer of
    the same stream waits (its id is drawn after the first one's commit); another stream
    does not."""
    started = threading.Event()
    release = threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                pgoutbox.send("/queue/x", "first", stream="a", ordered=True)
                started.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=first)
    holder.start()
    assert started.wait(10)
    try:
        other_stream = _sender("b", "b")
        other_stream.join(5)
        assert not other_stream.is_alive()
        same_stream = _sender("a", "second")
        same_stream.join(0.5)
        assert same_stream.is_alive(), "a second producer of the stream did not wait"
    finally:
        release.set()
    holder.join(10)
    same_stream.join(10)
    rows = OutboxEvent.objects.filter(stream="a").order_by("id")
    assert [bytes(r.body) for r in rows] == [b"first", b"second"]


def _sender(stream: str, body: str) -> threading.Thread:
    """A thread that sends one ordered message in autocommit."""

    def send() -> None:
        try:
            pgoutbox.send("/queue/x", body, stream=stream, ordered=True)
        finally:
            connection.close()

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def test_model_config_ordered_uses_the_pk_or_the_named_field_as_stream():
    meta = type("Meta", (), {"proxy": True, "app_label": "app"})
    by_pk = pgoutbox.publish([pgoutbox.Config("/topic/orders", ordered=True)])(
        type("OrderedByPk", (Order,), {"__module__": __name__, "Meta": meta})
    )
    meta2 = type("Meta", (), {"proxy": True, "app_label": "app"})
    by_field = pgoutbox.publish(
        [pgoutbox.Config("/topic/orders", ordered=True, stream_field="reference")]
    )(type("OrderedByRef", (Order,), {"__module__": __name__, "Meta": meta2}))
    order = by_pk.objects.create(reference="r-1")
    order.save()
    by_field.objects.create(reference="r-2")
    rows = list(OutboxEvent.objects.order_by("id"))
    assert [(r.stream, r.ordered) for r in rows] == [
        (f"app.orderedbypk:{order.pk}", True),
        (f"app.orderedbypk:{order.pk}", True),
        ("r-2", True),
    ]
    with pytest.raises(InvalidEventError, match="reference is empty"), transaction.atomic():
        by_field.objects.create(reference="")
    assert not Order.objects.filter(reference="").exists()


def test_model_config_rejects_an_unknown_stream_field_or_a_non_bool_ordered():
    from django.core.exceptions import ImproperlyConfigured

    meta = type("Meta", (), {"proxy": True, "app_label": "app"})
    cls: type[models.Model] = type(
        "BadStreamOrder", (Order,), {"__module__": __name__, "Meta": meta}
    )
    with pytest.raises(ImproperlyConfigured, match="'refrence' does not exist"):
        pgoutbox.publish([pgoutbox.Config("/topic/x", ordered=True, stream_field="refrence")])(cls)
    with pytest.raises(ImproperlyConfigured, match="ordered must be a bool"):
        pgoutbox.publish([pgoutbox.Config("/topic/x", ordered=1)])(cls)  # type: ignore[arg-type]


# -- the relay ---------------------------------------------------------------------------------


def test_concurrent_producers_streams_are_published_in_commit_order_by_two_relays(relay_thread):
    transport = MemoryTransport()
    relay_thread(transport=transport, batch_size=7)
    relay_thread(transport=transport, batch_size=7)
    committed: dict[str, list[int]] = defaultdict(list)
    order_lock = threading.Lock()
    counter = itertools.count()

    def produce(producer: int) -> None:
        for seq in range(40):
            stream = f"s{(seq + producer) % 3}"
            with transaction.atomic():
                n = next(counter)
                pgoutbox.send("/queue/o", {"stream": stream, "n": n}, stream=stream, ordered=True)
                # The stream's producer lock is held to the commit: this is commit order.
                with order_lock:
                    committed[stream].append(n)

    run_producers(produce, 4)
    assert transport.wait_for(160, timeout=30)
    assert _per_stream(_bodies(transport)) == dict(committed)
    wait_until(lambda: not OutboxEvent.objects.exists())


def test_a_plain_sql_ordered_message_row_is_published_in_order_not_dead_lettered(relay_thread):
    transport = MemoryTransport()
    with connection.cursor() as cursor:
        for n in range(5):
            cursor.execute(
                "INSERT INTO pgoutbox_event (stream, kind, destination, body, ordered) "
                "VALUES ('foreign', 'message', '/queue/f', %s, true)",
                [json.dumps({"stream": "foreign", "n": n})],
            )
    relay_thread(transport=transport)
    assert transport.wait_for(5, timeout=10)
    assert _per_stream(_bodies(transport)) == {"foreign": [0, 1, 2, 3, 4]}
    wait_until(lambda: not OutboxEvent.objects.exists())


def test_a_relay_woken_only_by_unordered_messages_runs_no_ordered_claim(relay_thread):
    transport = MemoryTransport()
    relay = relay_thread(transport=transport, poll_interval=30).relay
    wait_until(lambda: not relay.ordered.wanted)  # the connect-time pass is over
    passes = []
    original = relay.ordered.relay_pass
    relay.ordered.relay_pass = lambda: passes.append(1) or original()  # type: ignore[method-assign]
    for n in range(20):
        pgoutbox.send("/queue/u", {"stream": "", "n": n})
    assert transport.wait_for(20, timeout=10)
    assert passes == []
    pgoutbox.send("/queue/o", {"stream": "o", "n": 0}, stream="o", ordered=True)
    assert transport.wait_for(21, timeout=10)
    assert passes


@pytest.fixture
def amqp_poisoned(amqp_broker, stomp_consumer):
    """Streams "p" (its second message unroutable: RabbitMQ returns it) and "q" over the real
    AMQP broker; returns the consumer of the routable queue and the relay's settings."""
    queue = f"/queue/pgoutbox-ordered-{uuid.uuid4().hex[:10]}"
    consumer = stomp_consumer(queue)
    unroutable = f"/amq/queue/pgoutbox-missing-{uuid.uuid4().hex[:12]}"
    pgoutbox.send(queue, {"stream": "p", "n": 0}, stream="p", ordered=True)
    pgoutbox.send(unroutable, {"stream": "p", "n": 1}, stream="p", ordered=True)
    pgoutbox.send(queue, {"stream": "p", "n": 2}, stream="p", ordered=True)
    pgoutbox.send(queue, {"stream": "q", "n": 0}, stream="q", ordered=True)
    keys = {"TRANSPORT": TRANSPORTS["amqp"], "AMQP_URL": amqp_broker}
    return consumer, {**keys, "RETRY_BACKOFF_BASE": 0.05, "RETRY_BACKOFF_MAX": 0.1}


def _received(consumer: Any) -> dict[str, list[Any]]:
    return _per_stream([json.loads(m.body) for m in consumer.messages])


def test_a_refused_head_blocks_its_stream_but_not_another_under_block(amqp_poisoned, relay_thread):
    consumer, keys = amqp_poisoned
    with pgoutbox_settings(**keys, MAX_ATTEMPTS=2):
        relay_thread(transport=AmqpTransport(get_settings()))
        wait_until(lambda: OutboxEvent.objects.filter(stream="p", attempts__gte=4).exists())
    consumer.quiet_for(0.3)
    assert _received(consumer) == {"p": [0], "q": [0]}
    head, behind = OutboxEvent.objects.filter(stream="p").order_by("id")
    assert head.status == "pending" and "NO_ROUTE" in (head.last_error or "")
    assert (behind.status, behind.attempts) == ("pending", 0)


def test_a_refused_head_is_dead_lettered_and_the_stream_goes_on_under_dead_letter_and_continue(
    amqp_poisoned, relay_thread
):
    consumer, keys = amqp_poisoned
    with pgoutbox_settings(
        **keys, MAX_ATTEMPTS=3, KEEP_ORDER_POISON_POLICY="dead-letter-and-continue"
    ):
        relay_thread(transport=AmqpTransport(get_settings()))
        wait_until(lambda: OutboxEvent.objects.count() == 1)
        consumer.wait_for(3)
    assert _received(consumer) == {"p": [0, 2], "q": [0]}
    dead = OutboxEvent.objects.get()
    assert (dead.status, dead.attempts) == ("dead", 3)


def test_an_invalid_head_blocks_under_block_policy_and_never_dies(relay_thread):
    transport = MemoryTransport()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO pgoutbox_event (stream, kind, destination, body, ordered) VALUES "
            "('bad', 'message', 'no-slash', 'x', true), ('bad', 'message', '/queue/b', %s, true)",
            [json.dumps({"stream": "bad", "n": 1})],
        )
    with pgoutbox_settings(RETRY_BACKOFF_BASE=0.05, RETRY_BACKOFF_MAX=0.1, MAX_ATTEMPTS=2):
        relay_thread(transport=transport)
        wait_until(lambda: OutboxEvent.objects.filter(attempts__gte=4).exists())
    assert transport.deliveries == []
    head = OutboxEvent.objects.order_by("id").first()
    assert head is not None and head.status == "pending"
    assert "must start with '/'" in (head.last_error or "")


def test_a_stream_held_by_another_relay_is_skipped_and_taken_once_free():
    """A second relay's pass finds the stream locked, publishes nothing of it and looks again
    soon; once the holder commits, it takes the stream from its (new) head."""
    for n in range(3):
        pgoutbox.send("/queue/h", {"stream": "h", "n": n}, stream="h", ordered=True)
    holder = db.connect(db.connection_params("default"), autocommit=False)
    try:
        holder.execute(query("lock_ordered_messages"), {"stream": "h"})
        transport = MemoryTransport()
        lane = _lane(transport)
        try:
            report = lane.relay_pass()
            assert (report.delivered, transport.deliveries) == (0, [])
            assert lane.due_at < time.monotonic() + 1
        finally:
            holder.rollback()
        assert lane.relay_pass().delivered == 3
        assert [b["n"] for b in _bodies(transport)] == [0, 1, 2]
    finally:
        holder.close()
        lane.lane.store.conn.close()  # type: ignore[union-attr]


def test_a_stream_waits_for_each_confirmation_before_sending_the_next():
    """Within a stream one message per publish (a wave); streams share each wave."""
    for n in range(3):
        pgoutbox.send("/queue/w", {"stream": "a", "n": n}, stream="a", ordered=True)
        pgoutbox.send("/queue/w", {"stream": "b", "n": n}, stream="b", ordered=True)

    class Recording(MemoryTransport):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[list[str]] = []

        def publish_batch(self, messages: Any) -> PublishOutcome:
            self.batches.append([json.loads(m.body)["stream"] for m in messages])
            return super().publish_batch(messages)

    transport = Recording()
    lane = _lane(transport)
    try:
        assert lane.relay_pass().delivered == 6
    finally:
        lane.lane.store.conn.close()  # type: ignore[union-attr]
    assert [sorted(b) for b in transport.batches] == [["a", "b"]] * 3


def test_an_unreachable_broker_counts_an_attempt_on_the_heads_only_and_never_kills():
    for n in range(3):
        pgoutbox.send("/queue/x", {"stream": "a", "n": n}, stream="a", ordered=True)
    with pgoutbox_settings(
        TRANSPORT=TRANSPORTS["amqp"], AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F", MAX_ATTEMPTS=1
    ):
        lane = _lane(AmqpTransport(get_settings()))
        try:
            report = lane.relay_pass()
        finally:
            lane.lane.store.conn.close()  # type: ignore[union-attr]
    assert report.transport_failed and lane.lane.broker_error
    rows = list(OutboxEvent.objects.order_by("id"))
    assert [(r.status, r.attempts) for r in rows] == [
        ("pending", 1),
        ("pending", 0),
        ("pending", 0),
    ]


def _lane(transport: Any) -> OrderedMessages:
    from pgoutbox.relay.messages import MessageLane

    settings = get_settings()
    lane = MessageLane(settings=settings, transport=transport, streams=[], batch_size=50)
    lane.store = MessageStore(db.connect(db.connection_params("default"), autocommit=False))
    return OrderedMessages(lane, poll_interval=settings.poll_interval)


@pytest.mark.django_db(transaction=True, databases=["default", "direct"])
def test_ordered_messages_on_a_second_alias_commit_or_roll_back_with_it(relay_thread):
    """A producer on the "direct" alias: a rolled-back ordered message is never sent; the
    committed ones, from either alias, are published in order by a relay of "direct"."""
    transport = MemoryTransport()
    with pytest.raises(_Rollback), transaction.atomic(using="direct"):
        pgoutbox.send(
            "/queue/d", {"stream": "d", "n": -1}, stream="d", ordered=True, using="direct"
        )
        raise _Rollback
    pgoutbox.send("/queue/d", {"stream": "d", "n": 0}, stream="d", ordered=True, using="direct")
    pgoutbox.send("/queue/d", {"stream": "d", "n": 1}, stream="d", ordered=True)
    with pgoutbox_settings(DATABASE="direct"):
        relay_thread(transport=transport)
        assert transport.wait_for(2, timeout=10)
    assert _per_stream(_bodies(transport)) == {"d": [0, 1]}


def test_a_plain_insert_is_published_while_unordered_traffic_keeps_the_listener_awake(
    relay_thread,
):
    """A row no producer notified about (a plain INSERT) waits at most about a poll interval,
    even when notifications come faster than that and the listener never times out."""
    transport = MemoryTransport()
    relay_thread(transport=transport, poll_interval=0.5)
    stop = threading.Event()

    def unordered_traffic() -> None:
        try:
            while not stop.is_set():
                pgoutbox.send("/queue/busy", {"stream": "", "n": 0})
                time.sleep(0.05)
        finally:
            connection.close()

    traffic = threading.Thread(target=unordered_traffic)
    traffic.start()
    try:
        time.sleep(0.3)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO pgoutbox_event (stream, kind, destination, body, ordered) "
                "VALUES ('quiet', 'message', '/queue/q', %s, true)",
                [json.dumps({"stream": "quiet", "n": 0})],
            )
        wait_until(lambda: not OutboxEvent.objects.filter(stream="quiet").exists(), timeout=3)
    finally:
        stop.set()
        traffic.join(10)
    assert _per_stream(_bodies(transport))["quiet"] == [0]


def test_events_relay_run_once_publishes_ordered_streams_in_order():
    for n in range(3):
        pgoutbox.send("/queue/cron", {"stream": "cron", "n": n}, stream="cron", ordered=True)
    transport = MemoryTransport()
    assert build_relay(listen=False, transport=transport).drain_once() == 3
    assert _per_stream(_bodies(transport)) == {"cron": [0, 1, 2]}
    assert not OutboxEvent.objects.exists()


class _Rollback(Exception):
    pass


# -- plain SQL: pgoutbox_send(..., ordered => true) ---------------------------------------------


def _sql_session() -> Any:
    return db.connect(db.connection_params("default"), autocommit=False)


def test_pgoutbox_send_ordered_is_published_in_order(relay_thread):
    transport = MemoryTransport()
    with _sql_session() as conn:
        for n in range(3):
            conn.execute(
                "SELECT pgoutbox_send('/queue/sql', %s::jsonb, stream => 'sql', ordered => true)",
                [json.dumps({"stream": "sql", "n": n})],
            )
        conn.execute("SELECT pgoutbox_send('/queue/sql', 'unordered', '{}', 'sql')")
        conn.commit()
    assert sorted(OutboxEvent.objects.values_list("ordered", flat=True)) == [
        False,
        True,
        True,
        True,
    ]
    relay_thread(transport=transport)
    assert transport.wait_for(4, timeout=10)
    ordered = [
        json.loads(d.message.body) for d in transport.deliveries if d.message.body != b"unordered"
    ]
    assert _per_stream(ordered) == {"sql": [0, 1, 2]}


def test_pgoutbox_send_ordered_holds_the_stream_to_the_commit():
    with _sql_session() as first, _sql_session() as second:
        first.execute("SELECT pgoutbox_send('/queue/l', 'a', stream => 'l', ordered => true)")
        second.execute("SET lock_timeout = '200ms'")
        second.execute("SELECT pgoutbox_send('/queue/l', 'b', stream => 'other', ordered => true)")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            second.execute("SELECT pgoutbox_send('/queue/l', 'c', stream => 'l', ordered => true)")
        second.rollback()
        first.commit()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ("pgoutbox_send('/queue/x', 'x', ordered => true)", "needs a stream"),
        ("pgoutbox_send('/queue/x', 'x', stream => 's', ordered => NULL)", "got NULL"),
    ],
)
def test_pgoutbox_send_refuses_bad_ordered_arguments_writing_nothing(call, error):
    with _sql_session() as conn, pytest.raises(psycopg.Error, match=error):
        conn.execute(f"SELECT {call}")
    assert not OutboxEvent.objects.exists()


# -- plain SQL: an ordered message needs a stream (0009) -----------------------------------------


def test_a_plain_insert_of_an_ordered_message_without_a_stream_fails_and_writes_nothing():
    # It was accepted, and published as one stream named '' shared by every such producer.
    refused = pytest.raises(IntegrityError, match="pgoutbox_ordered_message_needs_a_stream")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO pgoutbox_event (destination, body, ordered) "
            "VALUES ('/queue/f', 'x', true), ('/queue/f', 'y', false)"
        )
    assert not OutboxEvent.objects.exists()
    with connection.cursor() as cursor:  # keep-order calls may still share the '' stream
        cursor.execute(
            "INSERT INTO pgoutbox_event (kind, function, args, ordered) "
            "VALUES ('call', 'tests.app.outbox.nothing', '{}', true)"
        )
    assert OutboxEvent.objects.get().stream == ""


def test_migration_0009_names_the_ordered_messages_without_a_stream_it_cannot_keep(
    empty_database,
):
    paths = sorted(p for p in migrations_dir().glob("000[1-8]_*.sql") if ".down." not in p.name)
    with psycopg.connect(**empty_database, autocommit=True) as conn:
        for path in paths:
            conn.execute(path.read_text())
        conn.execute(
            "INSERT INTO pgoutbox_event (destination, body, ordered) "
            "SELECT '/queue/f', 'x', n > 1 FROM generate_series(1, 3) n"
        )
        with pytest.raises(psycopg.errors.RaiseException) as raised:
            conn.execute((migrations_dir() / "0009_task_state_v2.sql").read_text())
        assert "ordered messages without a stream (ids {2,3}" in str(raised.value)
        assert "UPDATE pgoutbox_event SET stream" in (raised.value.diag.message_hint or "")
        conn.execute("UPDATE pgoutbox_event SET stream = 'moved' WHERE ordered")
        conn.execute((migrations_dir() / "0009_task_state_v2.sql").read_text())
