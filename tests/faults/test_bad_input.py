"""Bad input gets a clear error and writes or loses nothing: ``send()`` refuses it before any
row exists, the relay dead-letters invalid hand-written rows with the reason and keeps going,
wrong settings stop ``outbox_listen`` at start-up, and SQL-looking names are plain data."""

from __future__ import annotations

import decimal
import json
import re
import time

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from psycopg import sql

import pgoutbox
from pgoutbox.errors import InvalidEventError, SerializationError
from pgoutbox.models import OutboxEvent
from tests.app.models import Order
from tests.support import database
from tests.support.processes import CONNECTED_LINE, relay_env
from tests.support.relay_runner import run_command

pytestmark = pytest.mark.django_db(transaction=True)

SQL_LOOKING_STREAM = "'; DROP TABLE pgoutbox_event; --"


@pytest.mark.parametrize(
    ("body", "kwargs", "error", "message"),
    [
        (object(), {}, SerializationError, "not JSON-serializable"),
        ({"tags": {"a", "b"}}, {}, SerializationError, "not JSON-serializable"),
        ({"ratio": float("nan")}, {}, SerializationError, "not JSON-serializable"),
        ("x" * 1025, {}, InvalidEventError, "over MAX_BODY_BYTES (1024)"),
        ("ok", {"stream": "s" * 201}, InvalidEventError, "at most 200 bytes"),
        ("ok", {"stream": "é" * 101}, InvalidEventError, "at most 200 bytes"),  # 202 bytes
        ("ok", {"headers": {"x-count": 1}}, InvalidEventError, "'x-count' must be a str"),
        ("ok", {"headers": {"x-none": None}}, InvalidEventError, "'x-none' must be a str"),
        ("ok", {"headers": {"content-length": "1"}}, InvalidEventError, "set by pgoutbox"),
        ("ok", {"headers": [("x", "y")]}, SerializationError, "headers must be a mapping"),
        ("ok", {"destination": "queue/orders"}, InvalidEventError, "must start with '/'"),
        ("ok", {"destination": ""}, InvalidEventError, "non-empty str"),
        ("ok", {"destination": "/queue/a\nb"}, InvalidEventError, "line breaks"),
    ],
)
def test_send_refuses_bad_input_before_writing_anything(body, kwargs, error, message):
    kwargs = dict(kwargs)
    destination = kwargs.pop("destination", "/queue/orders")
    with override_settings(PGOUTBOX={**settings.PGOUTBOX, "MAX_BODY_BYTES": 1024}):
        with pytest.raises(error, match=re.escape(message)), transaction.atomic():
            Order.objects.create(reference="business row")
            pgoutbox.send(destination, body, **kwargs)
        # The caller's transaction is rolled back by the error, and no event row exists.
        assert not Order.objects.exists()
        assert not OutboxEvent.objects.exists()
        # The error is raised before any SQL: a caller that catches it keeps its transaction.
        with transaction.atomic():
            Order.objects.create(reference="kept")
            with pytest.raises(error):
                pgoutbox.send(destination, body, **kwargs)
        assert Order.objects.count() == 1 and not OutboxEvent.objects.exists()
    assert issubclass(error, TypeError if error is SerializationError else ValueError)


def test_database_refuses_an_oversized_stream_from_plain_sql(pg):
    with pytest.raises(Exception, match="check constraint"):
        pg.execute(
            "INSERT INTO pgoutbox_event (stream, destination, body) VALUES (%s, '/queue/a', 'x')",
            ("s" * 201,),
        )
    assert database.event_status(pg) == {}


DEST = object()  # stands for the consumer's destination

# (what is wrong, (kind, destination, headers, body size), the reason recorded)
_BAD_ROWS = [
    ("headers are a JSON array", ("message", DEST, "[1, 2]", 1), "headers must be a JSON object"),
    ("a header value is a number", ("message", DEST, '{"n": 1}', 1), "header 'n' must be a str"),
    ("a header value is null", ("message", DEST, '{"n": null}', 1), "header 'n' must be a str"),
    ("unknown kind", ("frobnicate", DEST, "{}", 1), "unknown event kind 'frobnicate'"),
    (
        "a framing header",
        ("message", DEST, '{"content-length": "1"}', 1),
        "'content-length' is set by pgoutbox",
    ),
    ("NULL destination", ("message", None, "{}", 1), "destination must be a non-empty str"),
    ("relative destination", ("message", "queue/x", "{}", 1), "must start with '/'"),
    ("body too large", ("message", DEST, "{}", 2000), "over MAX_BODY_BYTES"),
]


def test_invalid_hand_inserted_rows_are_dead_lettered_and_the_rest_delivered(
    relay_thread, counting_consumer, ledger, pg, figures
):
    consumer = counting_consumer()
    dest = sql.Literal(consumer.destination)
    with override_settings(PGOUTBOX={**settings.PGOUTBOX, "MAX_BODY_BYTES": 1024}):
        relay_thread(poll_interval=0.5, batch_size=4)

    # A non-Django producer's minimal insert: every other column has a default.
    plain = pg.execute(
        sql.SQL(
            "INSERT INTO pgoutbox_event (destination, body) VALUES ({}, 'plain sql')"
            " RETURNING message_id::text"
        ).format(dest)
    ).fetchone()[0]
    # One statement mixing good and bad rows: the bad ones must not hold the good ones back.
    values = []
    for n, (_, (kind, destination, headers, size), _) in enumerate(_BAD_ROWS):
        destination = consumer.destination if destination is DEST else destination
        values.append((kind, destination, headers, b"x" * size))
        values.append(("message", consumer.destination, "{}", f"good {n}".encode()))
    rows = pg.execute(
        sql.SQL(
            "INSERT INTO pgoutbox_event (kind, destination, headers, body) VALUES {}"
            " RETURNING message_id::text"
        ).format(
            sql.SQL(", ").join(
                sql.SQL("({}, {}, {}::jsonb, {})").format(*map(sql.Literal, v)) for v in values
            )
        )
    ).fetchall()
    bad_ids = [r[0] for r in rows[0::2]]
    ledger.record([plain, *(r[0] for r in rows[1::2])])

    missing = consumer.wait_for_ids(ledger.ids(), timeout=15)
    assert not missing, f"{len(missing)} good rows not delivered"
    dead = {}
    deadline = time.monotonic() + 10
    while len(dead) < len(bad_ids) and time.monotonic() < deadline:
        dead = {
            str(e.message_id): e
            for e in OutboxEvent.objects.filter(status="dead", message_id__in=bad_ids)
        }
        time.sleep(0.05)
    for (what, _, reason), message_id in zip(_BAD_ROWS, bad_ids, strict=True):
        event = dead.get(message_id)
        assert event is not None, f"{what}: not dead-lettered"
        assert reason in event.last_error, (what, event.last_error)
        assert event.attempts == 1, (what, event.attempts)  # dead at once, never retried

    # The relay is still delivering.
    later = pgoutbox.send(consumer.destination, "after the bad rows")
    ledger.record([later])
    assert not consumer.wait_for_ids([str(later)], timeout=5)
    accounting = ledger.account(consumer.quiet_for(0.3) or consumer.snapshot())
    figures.update(good=accounting.committed, dead=len(dead), lost=len(accounting.lost))
    assert not accounting.lost and not accounting.unexpected and not accounting.duplicates
    assert OutboxEvent.objects.exclude(status="dead").count() == 0


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("BATCH_SIZE", "500", "a positive int"),
        ("POLL_INTERVAL", "fast", "a positive number of seconds"),
        ("MAX_ATTEMPTS", 0, "a positive int"),
        ("STOMP_HOSTS", "localhost:61613", "(host, port) pairs"),
        ("STOMP_USE_SSL", "yes", "True or False"),
        ("NOTIFY_QUEUE_WARN", 5, "a number in (0, 1]"),
        ("BATCHSIZE", 10, "is not a setting; did you mean 'BATCH_SIZE'"),
    ],
)
def test_wrong_settings_stop_outbox_listen_at_start_up(key, value, expected):
    result = run_command(["outbox_listen"], env=relay_env({key: value}), timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "ImproperlyConfigured" in output
    assert f"PGOUTBOX['{key}']" in output and expected in output, output[-2000:]
    assert CONNECTED_LINE not in output


def test_sql_looking_stream_names_are_inert_data(relay_thread, counting_consumer, ledger, pg):
    consumer = counting_consumer()
    # A listener for that stream only, polling every minute: delivery within seconds proves
    # that the stream's own channel (named after the stream) was LISTENed to and notified.
    relay_thread(streams=[SQL_LOOKING_STREAM], poll_interval=60)
    time.sleep(0.3)
    with transaction.atomic():
        sent = pgoutbox.send(consumer.destination, {"stream": "odd"}, stream=SQL_LOOKING_STREAM)
    plain = pg.execute(
        "INSERT INTO pgoutbox_event (stream, destination, body) VALUES (%s, %s, 'plain')"
        " RETURNING message_id::text",
        (SQL_LOOKING_STREAM, consumer.destination),
    ).fetchone()[0]
    ledger.record([sent, plain])

    missing = consumer.wait_for_ids(ledger.ids(), timeout=5)
    assert not missing
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pgoutbox_event') IS NOT NULL")
        assert cursor.fetchone()[0]
    assert not OutboxEvent.objects.exists()
    accounting = ledger.account(consumer.quiet_for(0.3) or consumer.snapshot())
    assert not accounting.lost and not accounting.duplicates and not accounting.unexpected


def test_decimal_and_dates_are_encoded_not_refused():
    # The other side of the refusal tests: what DjangoJSONEncoder encodes is accepted.
    pgoutbox.send("/queue/orders", {"total": decimal.Decimal("12.50")})
    [event] = OutboxEvent.objects.all()
    assert json.loads(bytes(event.body)) == {"total": "12.50"}
