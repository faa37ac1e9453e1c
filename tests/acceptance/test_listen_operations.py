"""The real ``outbox_listen`` process: system checks at start, ``--metrics-port``."""

from __future__ import annotations

import pytest
from django.db import connection

import pgoutbox
from tests.support.metrics import scrape, wait_for_endpoint
from tests.support.relay_runner import run_command, start_command, terminate
from tests.support.tls import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def test_outbox_listen_refuses_to_start_on_unapplied_migrations():
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'pgoutbox' AND name = '0006_operations'"
            " RETURNING applied"
        )
        (applied,) = cursor.fetchone()
    try:
        result = run_command(["outbox_listen"], timeout=60)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied)"
                " VALUES ('pgoutbox', '0006_operations', %s)",
                [applied],
            )
    assert result.returncode != 0
    assert "pgoutbox.E003" in result.stderr and "0006_operations" in result.stderr


def test_outbox_listen_serves_metrics(stomp_broker, tmp_path):
    for n in range(3):  # on a stream this listener leaves alone: they stay pending
        pgoutbox.send("/queue/elsewhere", {"n": n}, stream="not-mine")
    port = free_port()
    log = tmp_path / "listen.log"
    process = start_command(
        ["outbox_listen", "--stream", "mine", "--metrics-port", str(port)], log=log
    )
    try:
        wait_for_endpoint(process, log, port)
        samples = scrape(port)
        assert samples["pgoutbox_pending_events"] == 3
        assert samples["pgoutbox_oldest_pending_age_seconds"] >= 0
        assert 0 <= samples["pgoutbox_notify_queue_usage"] < 0.5  # cluster-wide: shared
        assert samples["pgoutbox_events_published_total"] == 0
    finally:
        exit_code = terminate(process)
    assert exit_code == 0, log.read_text()


def test_a_bad_metrics_port_is_refused_by_name():
    result = run_command(["outbox_listen", "--metrics-port", "70000"], timeout=60)
    assert result.returncode != 0
    assert "argument --metrics-port: invalid port_number value: '70000'" in result.stderr


def test_subscribe_serves_metrics(stomp_broker, tmp_path):
    port = free_port()
    log = tmp_path / "subscribe.log"
    process = start_command(
        [
            "subscribe",
            "tests.app.callbacks.slow_record",
            "/queue/pgoutbox-metrics-test",
            "--metrics-port",
            str(port),
        ],
        log=log,
    )
    try:
        wait_for_endpoint(process, log, port)
        samples = scrape(port)
        assert samples['pgoutbox_consumer_messages_total{outcome="handled"}'] == 0
    finally:
        exit_code = terminate(process)
    assert exit_code == 0, log.read_text()
