"""The real ``manage.py outbox_listen`` process: commit, delivery, SIGTERM -> exit 0."""

from __future__ import annotations

import signal
import time

import pytest
from django.db import transaction

import pgoutbox
from pgoutbox.models import OutboxEvent
from tests.support.relay_runner import start_command, terminate

pytestmark = pytest.mark.django_db(transaction=True)


def test_outbox_listen_delivers_pushes_and_exits_0_on_sigterm(stomp_consumer, tmp_path):
    consumer = stomp_consumer()
    backlog = str(pgoutbox.send(consumer.destination, "written before start"))
    log = tmp_path / "listen.log"
    process = start_command(
        ["outbox_listen", "--poll-interval", "30", "--batch-size", "50"], log=log
    )
    try:
        assert [m.message_id for m in consumer.wait_for(1, timeout=20)] == [backlog]
        with transaction.atomic():
            pushed = str(pgoutbox.send(consumer.destination, {"pushed": True}))
        started = time.monotonic()
        received = consumer.wait_for(2, timeout=10)
        assert time.monotonic() - started < 5  # far below the 30 s poll: NOTIFY woke it
        assert [m.message_id for m in received] == [backlog, pushed]
    finally:
        exit_code = terminate(process)
    assert exit_code == 0, log.read_text()
    assert not OutboxEvent.objects.exists()
    assert "SIGTERM received" in log.read_text()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_events_relay_in_a_loop_delivers_and_stops_cleanly(stomp_consumer, tmp_path, signum):
    consumer = stomp_consumer()
    log = tmp_path / "relay.log"
    process = start_command(["events_relay", "--run-in-loop", "--loop-interval", "0.2"], log=log)
    try:
        ids = [str(pgoutbox.send(consumer.destination, n, stream=f"s{n % 3}")) for n in range(9)]
        assert sorted(m.message_id for m in consumer.wait_for(9, timeout=20)) == sorted(ids)
    finally:
        process.send_signal(signum)
        exit_code = process.wait(20)
    assert exit_code == 0, log.read_text()
    assert f"{signum.name} received" in log.read_text()
    assert not OutboxEvent.objects.exists()
