"""The statement-level trigger: one notification per stream per statement, quoted, switchable."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

import pgoutbox
from pgoutbox.db import connection_params
from pgoutbox.models import OutboxEvent
from pgoutbox.relay.channels import CATCH_ALL_CHANNEL, stream_channel
from pgoutbox.relay.listener import NotificationListener

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listen_conn():
    conn = psycopg.connect(**connection_params("default"), autocommit=True)
    yield conn
    conn.close()


def _listen(conn: psycopg.Connection[Any], *channels: str) -> None:
    NotificationListener(conn, channels).listen()


def _collect(conn: psycopg.Connection[Any], seconds: float = 0.5) -> Counter[tuple[str, str]]:
    return Counter((n.channel, n.payload) for n in conn.notifies(timeout=seconds))


def test_bulk_create_of_1000_rows_notifies_once_per_stream(listen_conn):
    _listen(listen_conn, CATCH_ALL_CHANNEL, stream_channel("a"), stream_channel("b"))
    OutboxEvent.objects.bulk_create(
        [OutboxEvent(stream="ab"[n % 2], destination="/queue/x", body=b"{}") for n in range(1000)]
    )
    assert OutboxEvent.objects.count() == 1000
    assert _collect(listen_conn) == Counter(
        {
            (CATCH_ALL_CHANNEL, "a"): 1,
            (CATCH_ALL_CHANNEL, "b"): 1,
            (stream_channel("a"), ""): 1,
            (stream_channel("b"), ""): 1,
        }
    )


def test_rows_inserted_with_plain_sql_get_every_default_and_a_notification(listen_conn):
    _listen(listen_conn, CATCH_ALL_CHANNEL)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO pgoutbox_event (destination, body) "
            "SELECT '/queue/plain', convert_to('row ' || n, 'UTF8') FROM generate_series(1, 500) n"
        )
    rows = OutboxEvent.objects.all()
    assert len(rows) == 500
    assert len({row.message_id for row in rows}) == 500
    assert {(row.stream, row.kind, row.status, row.attempts) for row in rows} == {
        ("", "message", "pending", 0)
    }
    assert _collect(listen_conn) == Counter({(CATCH_ALL_CHANNEL, ""): 1})


@pytest.mark.parametrize("notify", ["on", "adaptive"])
def test_call_rows_notify_no_message_channel_and_a_mixed_statement_only_its_messages(
    listen_conn, notify
):
    """The message lane never claims calls, so the trigger (version 3) wakes it for message
    rows only; calls and tasks wake the calls lane on their own channel."""
    _listen(listen_conn, CATCH_ALL_CHANNEL, stream_channel("calls"), stream_channel("mixed"))
    insert = (
        "INSERT INTO pgoutbox_event (stream, kind, destination, body, function, args) "
        "VALUES (%s, 'call', NULL, NULL, 'f', '{}'::jsonb)"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('pgoutbox.notify', %s, true)", [notify])
        cursor.execute(insert, ["calls"])
    assert _collect(listen_conn) == Counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('pgoutbox.notify', %s, true)", [notify])
        cursor.execute(
            "INSERT INTO pgoutbox_event (stream, kind, destination, body, function, args) "
            "VALUES ('calls', 'call', NULL, NULL, 'f', '{}'::jsonb), "
            "('mixed', 'message', '/queue/x', 'm', NULL, NULL)"
        )
    assert _collect(listen_conn) == Counter(
        {(CATCH_ALL_CHANNEL, "mixed"): 1, (stream_channel("mixed"), ""): 1}
    )
    assert OutboxEvent.objects.filter(kind="call").count() == 2


def test_notify_off_sends_nothing(listen_conn):
    _listen(listen_conn, CATCH_ALL_CHANNEL)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL pgoutbox.notify = 'off'")
        pgoutbox.send("/queue/x", "quiet")
    assert _collect(listen_conn) == Counter()
    pgoutbox.send("/queue/x", "loud")  # the setting was local to that transaction
    assert _collect(listen_conn) == Counter({(CATCH_ALL_CHANNEL, ""): 1})


def test_no_notification_before_commit_and_none_after_rollback(listen_conn):
    _listen(listen_conn, CATCH_ALL_CHANNEL)
    with pytest.raises(RuntimeError), transaction.atomic():
        pgoutbox.send("/queue/x", "never")
        assert _collect(listen_conn, 0.2) == Counter()
        raise RuntimeError
    assert _collect(listen_conn) == Counter()


@pytest.mark.parametrize(
    "stream", ["orders", "'; DROP TABLE pgoutbox_event; --", 'quo"te', "ü" * 60, "x" * 200]
)
def test_stream_channels_agree_with_sql_and_odd_names_are_data(listen_conn, stream):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pgoutbox_channel_v1(%s)", [stream])
        assert cursor.fetchone()[0] == stream_channel(stream)
    _listen(listen_conn, stream_channel(stream))
    pgoutbox.send("/queue/x", "hi", stream=stream)
    assert _collect(listen_conn) == Counter({(stream_channel(stream), ""): 1})
    assert OutboxEvent.objects.get().stream == stream


def test_stream_over_the_limit_is_refused_before_writing():
    with pytest.raises(ValueError, match="200 bytes"):
        pgoutbox.send("/queue/x", "hi", stream="x" * 201)
    with (
        pytest.raises(IntegrityError, match="pgoutbox_event_stream_check"),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO pgoutbox_event (stream, destination, body) VALUES (%s, '/q', '')",
            ["x" * 201],
        )
    assert not OutboxEvent.objects.exists()
