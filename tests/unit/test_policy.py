"""Pure policy functions: backoff, channel names, error attribution, encoding, validation."""

from __future__ import annotations

import datetime
import decimal
import random
import uuid

import pytest

from pgoutbox.errors import SerializationError
from pgoutbox.policy import compute_backoff, dies
from pgoutbox.producer.encoding import encode_body
from pgoutbox.relay.channels import stream_channel
from pgoutbox.sql import _parse_queries, migrations_dir, queries
from pgoutbox.transports.base import Message
from pgoutbox.transports.stomp import blame_error
from pgoutbox.validation import destination_error, headers_error, stream_error


def test_backoff_doubles_up_to_the_cap_without_jitter():
    delays = [compute_backoff(n, base=1.0, cap=60.0, jitter=0) for n in range(1, 10)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_backoff_jitter_stays_within_its_band():
    rand = random.Random(7)
    delays = [compute_backoff(3, base=1.0, cap=60.0, jitter=0.25, rand=rand) for _ in range(200)]
    assert all(3.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 100  # rows failing together come back apart


def test_backoff_huge_attempt_counts_do_not_overflow():
    assert compute_backoff(10_000, base=1.0, cap=300.0, jitter=0) == 300.0


def test_short_stream_channel_keeps_the_name():
    assert stream_channel("orders") == "pgoutbox_s:orders"
    assert stream_channel("") == "pgoutbox_s:"


def test_long_stream_channel_is_hashed_to_fit_63_bytes():
    channel = stream_channel("é" * 40)
    assert channel.startswith("pgoutbox_h:")
    assert len(channel.encode()) <= 63
    assert stream_channel("é" * 40) != stream_channel("é" * 41)


def _message(event_id: int, destination: str) -> Message:
    return Message(event_id, uuid.uuid4(), destination, b"")


def test_error_frame_is_blamed_on_the_destination_it_names():
    waiting = [
        _message(1, "/queue/ok"),
        _message(2, "/exchange/missing/key"),
        _message(3, "/queue/b"),
    ]
    reason = "not_found NOT_FOUND - no exchange 'missing' in vhost '/'"
    assert blame_error(reason, waiting) == [2]


def test_error_frame_naming_nothing_is_blamed_on_the_first_waiting_message():
    waiting = [_message(4, "/queue/a"), _message(5, "/queue/b")]
    assert blame_error("internal error", waiting) == [4]
    assert blame_error("internal error", []) == []


def test_body_encoding():
    assert encode_body("é") == ("é".encode(), "text/plain;charset=utf-8")
    assert encode_body(b"\x00") == (b"\x00", "application/octet-stream")
    body, content_type = encode_body(
        {"at": datetime.date(2026, 1, 2), "amount": decimal.Decimal("1.50"), "id": uuid.UUID(int=1)}
    )
    assert content_type == "application/json"
    assert (
        body
        == b'{"at": "2026-01-02", "amount": "1.50", "id": "00000000-0000-0000-0000-000000000001"}'
    )


def test_unencodable_body_names_the_value():
    with pytest.raises(TypeError, match="not JSON serializable") as excinfo:
        encode_body({"callback": object()})
    assert isinstance(excinfo.value, SerializationError)
    with pytest.raises(SerializationError):
        encode_body(float("nan"))


def test_validation_rules():
    assert destination_error("/queue/a") is None
    assert "start with '/'" in (destination_error("queue/a") or "")
    assert destination_error(None) is not None
    assert headers_error({"a": "b"}) is None
    assert "must be a str" in (headers_error({"a": 1}) or "")
    assert "JSON object" in (headers_error(["a"]) or "")
    assert "set by pgoutbox" in (headers_error({"Content-Length": "3"}) or "")
    assert "set by pgoutbox" in (headers_error({"receipt": "r1"}) or "")
    assert stream_error("x" * 200) is None
    assert "200 bytes" in (stream_error("x" * 201) or "")


def test_query_file_parses_into_named_queries():
    assert _parse_queries("-- name: a\nSELECT 1\n\n-- name: b\nSELECT 2\n") == {
        "a": "SELECT 1",
        "b": "SELECT 2",
    }
    assert {"claim_batch", "delete_events", "record_failures", "insert_message"} <= set(queries())


def test_every_sql_migration_has_a_django_migration():
    from pathlib import Path

    import pgoutbox.migrations

    django_dir = Path(pgoutbox.migrations.__file__).parent
    sql_files = sorted(
        p for p in migrations_dir().glob("*.sql") if not p.name.endswith(".down.sql")
    )
    assert sql_files, "no SQL migrations found"
    for sql_file in sql_files:
        django_file = django_dir / (sql_file.stem + ".py")
        assert django_file.exists(), f"{sql_file.name} has no Django migration {django_file.name}"
        assert sql_file.name in django_file.read_text(), (
            f"{django_file.name} does not apply {sql_file.name}"
        )


@pytest.mark.parametrize(
    ("attempts", "final", "mortal", "dead"),
    [
        (1, False, True, False),
        (3, False, True, True),  # reached MAX_ATTEMPTS
        (1, True, True, True),  # final: dead at once
        (99, False, False, False),  # immortal: never dies of attempts
        (1, True, False, True),  # ...but an invalid row still is final
    ],
)
def test_one_rule_decides_when_an_event_dies(attempts, final, mortal, dead):
    assert dies(attempts, max_attempts=3, final=final, mortal=mortal) is dead
