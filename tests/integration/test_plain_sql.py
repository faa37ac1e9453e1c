"""Producers outside Django: pgoutbox_send() and INSERTs of text, jsonb or bytea into body,
from plain psycopg and from psql on a database migrated by psql alone; the relay delivers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from psycopg.types.json import Jsonb

from pgoutbox.models import OutboxEvent
from pgoutbox.sql import migrations_dir
from tests.support.relay_runner import manage_env, run_command

TEXT = "text/plain;charset=utf-8"


def _psql(params: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail("psql is not installed (.ci/test installs postgresql-client)")
    command = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(params["host"])]
    command += ["-p", str(params["port"]), "-U", str(params["user"]), "-d", str(params["dbname"])]
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _test_database_params() -> dict[str, object]:
    db = connection.settings_dict
    return {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "dbname": db["NAME"]}


@pytest.mark.django_db(transaction=True)
def test_plain_psycopg_producer_sends_text_jsonb_and_bytes(stomp_consumer, relay_thread):
    consumer = stomp_consumer()
    queue = consumer.destination
    with psycopg.connect(**_test_database_params(), autocommit=True) as conn:  # type: ignore[arg-type]
        ids = [
            conn.execute("SELECT pgoutbox_send(%s, %s)", (queue, "héllo")).fetchone()[0],
            conn.execute(
                "SELECT pgoutbox_send(%s, %s, %s)", (queue, Jsonb({"n": 1}), Jsonb({"x-a": "b"}))
            ).fetchone()[0],
            conn.execute("SELECT pgoutbox_send(%s, %s)", (queue, b"\x00\xff")).fetchone()[0],
            # Untyped literals: the text overload, not an "ambiguous function" error.
            conn.execute(f"SELECT pgoutbox_send('{queue}', 'literal')").fetchone()[0],
        ]
        insert = "INSERT INTO pgoutbox_event (destination, body) "
        conn.execute(insert + "SELECT %s, json_build_object('n', 2)::text", (queue,))
        conn.execute(insert + "VALUES (%s, %s::jsonb)", (queue, json.dumps({"n": 3})))
        conn.execute(insert + "VALUES (%s, %s)", (queue, b"\x01raw\xfe"))  # bytea
        conn.execute(insert + "VALUES (%s, 'untyped')", (queue,))
    assert len(set(ids)) == 4
    relay_thread()

    received = {m.body: m for m in consumer.wait_for(8)}
    assert {body: m.headers.get("content-type") for body, m in received.items()} == {
        "héllo".encode(): TEXT,
        b'{"n": 1}': "application/json",
        b"\x00\xff": "application/octet-stream",
        b"literal": TEXT,
        b'{"n" : 2}': None,  # inserted into body: its bytes, labelled by the producer or not
        b'{"n": 3}': None,
        b"\x01raw\xfe": None,
        b"untyped": None,
    }
    assert received[b'{"n": 1}'].headers["x-a"] == "b"
    assert {received[b"literal"].message_id} <= {str(i) for i in ids}
    assert len(consumer.quiet_for(0.5)) == 8  # nothing twice
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_pgoutbox_send_refuses_bad_input_and_writes_nothing():
    with psycopg.connect(**_test_database_params(), autocommit=True) as conn:  # type: ignore[arg-type]
        for args, message in [
            (("queue/x", "b"), "destination must start with '/'"),
            ((None, "b"), "destination must start with '/'"),
            (("/queue/x", "b", Jsonb({"n": 1})), "headers must be a JSON object of strings"),
            (("/queue/x", "b", Jsonb(["h"])), "headers must be a JSON object of strings"),
        ]:
            placeholders = ", ".join(["%s"] * len(args))
            with pytest.raises(psycopg.Error) as exc:
                conn.execute(f"SELECT pgoutbox_send({placeholders})", args)
            assert message in str(exc.value)
        with pytest.raises(psycopg.Error, match="must not be NULL"):
            conn.execute("SELECT pgoutbox_send('/queue/x', NULL::text)")
        with pytest.raises(psycopg.Error, match="stream"):
            conn.execute("SELECT pgoutbox_send('/queue/x', 'b', '{}', %s)", ("s" * 201,))
    assert not OutboxEvent.objects.exists()


def test_psql_on_a_database_migrated_without_django(empty_database, stomp_consumer, tmp_path):
    consumer = stomp_consumer()
    migrations = sorted(
        p for p in migrations_dir().glob("*.sql") if not p.name.endswith(".down.sql")
    )
    assert "0004_plain_sql_producers.sql" in [p.name for p in migrations]
    for path in migrations:
        _psql(empty_database, "-f", str(path))
    queue = consumer.destination
    script = Path(tmp_path / "produce.sql")
    script.write_text(
        f"SELECT pgoutbox_send('{queue}', 'hello');\n"
        f"SELECT pgoutbox_send('{queue}', jsonb_build_object('n', 1), stream => 'orders');\n"
        f"SELECT pgoutbox_send('{queue}', '\\x0001'::bytea);\n"
        f"INSERT INTO pgoutbox_event (destination, body)\n"
        f"    SELECT '{queue}', json_build_object('n', n)::text FROM generate_series(2, 3) n;\n"
    )
    _psql(empty_database, "-f", str(script))

    env = manage_env()
    env["PGOUTBOX_TEST_DB_NAME"] = str(empty_database["dbname"])
    relayed = run_command(["events_relay"], env=env)
    assert relayed.returncode == 0, relayed.stdout + relayed.stderr

    bodies = sorted(m.body for m in consumer.wait_for(5))
    assert bodies == sorted([b"hello", b'{"n": 1}', b"\x00\x01", b'{"n" : 2}', b'{"n" : 3}'])
    assert len(consumer.quiet_for(0.5)) == 5
    with psycopg.connect(**empty_database) as conn:  # type: ignore[arg-type]
        assert conn.execute("SELECT count(*) FROM pgoutbox_event").fetchone() == (0,)
