"""``outbox_status`` shows what an operator must see; ``outbox_requeue`` brings dead back."""

from __future__ import annotations

import datetime
import io
import json
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

import pgoutbox
from pgoutbox.db import relay_application_name
from pgoutbox.models import OutboxEvent
from tests.support.function_events import pgoutbox_settings

pytestmark = pytest.mark.django_db(transaction=True)


def _status(*args: str) -> dict:
    out = io.StringIO()
    call_command("outbox_status", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def _dead_event(destination: str, error: str) -> int:
    pgoutbox.send(destination, "poison")
    event = OutboxEvent.objects.latest("id")
    OutboxEvent.objects.filter(pk=event.pk).update(status="dead", attempts=25, last_error=error)
    return event.pk


def test_status_reports_backlog_dead_events_and_the_trigger():
    pgoutbox.send("/queue/a", "due")
    pgoutbox.send("/queue/a", "later")
    OutboxEvent.objects.filter(body=b"later").update(available_at="2999-01-01T00:00:00Z")
    dead = _dead_event("/exchange/missing/x", "broker rejected: no exchange 'missing'")

    status = _status()

    assert (status["pending_due"], status["pending_later"], status["dead"]) == (1, 1, 1)
    assert status["trigger"] == "installed"
    assert status["notify_mode"] == "on"
    assert status["oldest_pending_seconds"] >= 0
    assert status["latest_dead"] == [
        {
            "id": dead,
            "stream": "",
            "kind": "message",
            "target": "/exchange/missing/x",
            "attempts": 25,
            "last_error": "broker rejected: no exchange 'missing'",
        }
    ]
    assert status["healthy"] is False
    with pytest.raises(CommandError, match="unhealthy"):
        call_command("outbox_status", "--fail-unhealthy", stdout=io.StringIO())


def test_status_sees_a_disabled_trigger_and_the_notify_mode():
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE pgoutbox_event DISABLE TRIGGER pgoutbox_notify_v3")
        cursor.execute("SET pgoutbox.notify = 'off'")
    try:
        status = _status()
        assert (status["trigger"], status["notify_mode"]) == ("disabled", "off")
        assert status["healthy"] is False
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE pgoutbox_event ENABLE TRIGGER pgoutbox_notify_v3")
            cursor.execute("RESET pgoutbox.notify")
    assert _status("--without-relay")["healthy"] is True
    call_command("outbox_status", "--fail-unhealthy", "--without-relay", stdout=io.StringIO())


def test_requeued_dead_event_is_delivered(stomp_consumer, relay_thread):
    consumer = stomp_consumer()
    dead = _dead_event(consumer.destination, "broker rejected: once upon a time")
    other_dead = _dead_event(consumer.destination, "stays dead")
    relay_thread(poll_interval=0.2)
    assert consumer.quiet_for(0.5) == []

    out = io.StringIO()
    call_command("outbox_requeue", str(dead), stdout=out)

    assert f"requeued 1 events: [{dead}]" in out.getvalue()
    assert [m.body for m in consumer.wait_for(1, timeout=5)] == [b"poison"]
    deadline = time.monotonic() + 5  # the row goes once the batch's transaction commits
    while OutboxEvent.objects.filter(pk=dead).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(OutboxEvent.objects.values_list("pk", "status")) == [(other_dead, "dead")]


def test_requeue_needs_ids_or_all():
    with pytest.raises(CommandError, match="ids, or pass --all"):
        call_command("outbox_requeue")
    first = _dead_event("/queue/a", "x")
    second = _dead_event("/queue/b", "y")
    call_command("outbox_requeue", "--all", stdout=io.StringIO())
    rows = OutboxEvent.objects.filter(pk__in=[first, second])
    assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}
    assert {r.last_error for r in rows} == {"x", "y"}  # kept as history


def test_unhealthy_without_a_relay_until_one_connects(relay_thread):
    status = _status()
    assert status["relay_sessions"] == 0
    assert status["problems"] == ["no relay connected"]
    with pytest.raises(CommandError, match="unhealthy: no relay connected"):
        call_command("outbox_status", "--fail-unhealthy", stdout=io.StringIO())
    relay_thread(poll_interval=0.2)
    deadline = time.monotonic() + 10
    while _status()["relay_sessions"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    out = io.StringIO()
    call_command("outbox_status", "--fail-unhealthy", stdout=out)
    assert "health: ok" in out.getvalue()


def test_unhealthy_when_the_oldest_pending_event_is_older_than_max_age():
    pgoutbox.send("/queue/a", "stuck")
    OutboxEvent.objects.update(created_at=timezone.now() - datetime.timedelta(minutes=10))
    args = ("--fail-unhealthy", "--without-relay")
    with pytest.raises(CommandError, match=r"oldest pending event is 60\d\.\ds old \(max 60s\)"):
        call_command("outbox_status", *args, "--max-age", "60", stdout=io.StringIO())
    call_command("outbox_status", *args, "--max-age", "3600", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--max-age must be a positive number"):
        call_command("outbox_status", "--max-age", "0", stdout=io.StringIO())
    status = _status("--max-age", "60")
    assert status["healthy"] is False
    assert status["problems"][0] == "no relay connected"
    assert status["problems"][1].startswith("oldest pending event is 60")


def _session_names() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
        )
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.parametrize("where", ["DATABASES", "RELAY_CONNECTIONS"])
def test_relays_are_recognised_when_the_settings_name_the_application(
    relay_thread, monkeypatch, where
):
    options = {**connection.settings_dict.get("OPTIONS", {}), "application_name": "orders-app"}
    if where == "DATABASES":
        monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
        connection.close()  # the next query opens a session under the new name
        overrides = {}
    else:
        overrides = {"RELAY_CONNECTIONS": {"default": {"OPTIONS": options}}}
    with pgoutbox_settings(**overrides):
        relay_thread(poll_interval=0.2)
        deadline = time.monotonic() + 10
        while _status()["relay_sessions"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        call_command("outbox_status", "--fail-unhealthy", stdout=io.StringIO())
    names = _session_names()
    assert "pgoutbox:orders-app" in names  # the operator's name is kept after pgoutbox's
    assert "pgoutbox" not in names
    if where == "DATABASES":
        assert "orders-app" in names  # Django's own sessions keep the name as configured


def test_a_relay_session_name_fits_postgresqls_limit():
    assert relay_application_name(None) == relay_application_name("") == "pgoutbox"
    assert relay_application_name("pgoutbox") == "pgoutbox"
    assert relay_application_name("pgoutbox:api") == "pgoutbox:api"
    long = relay_application_name("é" * 60)  # 120 bytes in UTF-8
    assert long.startswith("pgoutbox:é") and len(long.encode()) <= 63
    with pytest.raises(ImproperlyConfigured, match="application_name must be a str, got 5"):
        relay_application_name(5)
