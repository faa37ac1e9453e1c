"""``events_relay`` (cron) and the start-up checks of both commands."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

import pgoutbox
from pgoutbox.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)


def test_events_relay_once_delivers_every_stream(stomp_consumer):
    consumer = stomp_consumer()
    ids = {str(pgoutbox.send(consumer.destination, n, stream=s)) for n, s in enumerate("aab ")}
    ids.add(str(pgoutbox.send(consumer.destination, "no stream")))
    out = io.StringIO()

    call_command("events_relay", stdout=out)

    assert "relayed 5 events" in out.getvalue()
    assert {m.message_id for m in consumer.wait_for(5)} == ids
    assert not OutboxEvent.objects.exists()


def test_jaiminhos_command_classes_run_from_their_module_paths(stomp_consumer):
    """jaiminho's README: ``call_command(events_relay.Command(), ...)`` with the class imported
    from ``jaiminho.management.commands``; likewise ``event_cleaner``."""
    from pgoutbox.compat.jaiminho.management.commands import event_cleaner, events_relay

    consumer = stomp_consumer()
    sent = str(pgoutbox.send(consumer.destination, "relayed", stream="my-stream"))
    out = io.StringIO()

    call_command(events_relay.Command(), stream="my-stream", stdout=out)
    call_command(event_cleaner.Command(), stdout=io.StringIO())

    assert out.getvalue().strip() == "relayed 1 events"
    assert [m.message_id for m in consumer.wait_for(1)] == [sent]


def test_events_relay_with_stream_relays_only_that_stream(stomp_consumer):
    consumer = stomp_consumer()
    wanted = {str(pgoutbox.send(consumer.destination, n, stream="wanted")) for n in range(3)}
    pgoutbox.send(consumer.destination, "other", stream="other")
    pgoutbox.send(consumer.destination, "default stream")

    call_command("events_relay", "--stream", "wanted", stdout=io.StringIO())

    assert {m.message_id for m in consumer.wait_for(3)} == wanted
    assert consumer.quiet_for(0.5)[3:] == []
    assert sorted(OutboxEvent.objects.values_list("stream", flat=True)) == ["", "other"]


@pytest.mark.parametrize("command", ["outbox_listen", "events_relay"])
@pytest.mark.parametrize(
    ("pgoutbox_settings", "key"),
    [({"POLL_INTERVALL": 1}, "POLL_INTERVALL"), ({"BATCH_SIZE": "10"}, "BATCH_SIZE")],
)
def test_bad_settings_fail_at_start_up_naming_the_key(command, pgoutbox_settings, key):
    pgoutbox.send("/queue/untouched", "stays")
    with (
        override_settings(PGOUTBOX=pgoutbox_settings),
        pytest.raises(ImproperlyConfigured, match=key),
    ):
        call_command(command)
    assert OutboxEvent.objects.get().attempts == 0


def test_send_refuses_what_it_cannot_encode_before_writing():
    with pytest.raises(TypeError, match="not JSON serializable"):
        pgoutbox.send("/queue/x", {"when": object()})
    with pytest.raises(ValueError, match="start with '/'"):
        pgoutbox.send("queue/x", "body")
    with pytest.raises(ValueError, match="'x-retries' must be a str"):
        pgoutbox.send("/queue/x", "body", headers={"x-retries": 3})  # type: ignore[dict-item]
    with (
        override_settings(PGOUTBOX={"MAX_BODY_BYTES": 10}),
        pytest.raises(ValueError, match="MAX_BODY_BYTES"),
    ):
        pgoutbox.send("/queue/x", "x" * 11)
    assert not OutboxEvent.objects.exists()
