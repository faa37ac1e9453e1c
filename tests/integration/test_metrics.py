"""Prometheus metrics scraped from the real HTTP endpoint, gauges read from the test database."""

from __future__ import annotations

import datetime
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

import pgoutbox
from pgoutbox import metrics
from pgoutbox.conf import get_settings
from pgoutbox.models import OutboxEvent
from tests.support import database
from tests.support.metrics import scrape

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def endpoint() -> Iterator[int]:
    stop = metrics.serve_relay_metrics(0, get_settings())
    yield stop.port  # type: ignore[attr-defined]
    stop()


def test_gauges_are_read_from_the_database_at_scrape_time(endpoint):
    before = scrape(endpoint)
    assert before["pgoutbox_pending_events"] == 0
    assert before["pgoutbox_oldest_pending_age_seconds"] == 0
    assert 0 <= before["pgoutbox_notify_queue_usage"] < 0.5  # cluster-wide: shared
    for n in range(3):
        pgoutbox.send("/queue/metrics", {"n": n})
    OutboxEvent.objects.filter(pk=OutboxEvent.objects.earliest("id").pk).update(
        created_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=90)
    )
    dead = OutboxEvent.objects.latest("id")
    OutboxEvent.objects.filter(pk=dead.pk).update(status="dead")
    after = scrape(endpoint)
    assert after["pgoutbox_pending_events"] == 2  # dead events are not pending
    assert 90 <= after["pgoutbox_oldest_pending_age_seconds"] < 120


def test_the_gauges_session_is_not_counted_as_a_relay(endpoint):
    scrape(endpoint)
    with database.connect() as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT application_name FROM pg_stat_activity WHERE datname = %s",
                (database.current_db_name(),),
            )
        ]
    assert "pgoutbox-metrics" in names and "pgoutbox" not in names


def test_counters_and_histograms(endpoint):
    base = scrape(endpoint)
    metrics.observe_batch(size=5, published=3, failed=1, dead=1)
    metrics.observe_call("done")
    metrics.observe_call("done")
    metrics.observe_call("dead")
    now = datetime.datetime.now(datetime.UTC)
    metrics.observe_published([now - datetime.timedelta(seconds=0.02)], now=now)
    after = scrape(endpoint)

    def grew(name: str) -> float:
        return after[name] - base.get(name, 0.0)

    assert grew("pgoutbox_events_published_total") == 3
    assert grew("pgoutbox_events_failed_total") == 1
    assert grew("pgoutbox_events_dead_total") == 1
    assert grew('pgoutbox_calls_total{outcome="done"}') == 2
    assert grew('pgoutbox_calls_total{outcome="dead"}') == 1
    assert grew("pgoutbox_batch_size_count") == 1 and grew("pgoutbox_batch_size_sum") == 5
    assert grew('pgoutbox_commit_to_publish_seconds_bucket{le="0.025"}') == 1
    assert grew('pgoutbox_commit_to_publish_seconds_bucket{le="0.01"}') == 0
    with pytest.raises(ValueError, match="call outcome must be one of"):
        metrics.observe_call("exploded")


def test_gauges_are_read_from_the_database_the_relay_serves(settings):
    """--database other: the gauges come from that alias, reached as the relay reaches it
    (RELAY_CONNECTIONS), not from PGOUTBOX['DATABASE']."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    settings.PGOUTBOX = {
        **settings.PGOUTBOX,
        "RELAY_CONNECTIONS": {"other": {"PORT": closed.getsockname()[1]}},
    }
    try:
        stop = metrics.serve_relay_metrics(0, get_settings(), "other")
        try:
            assert "pgoutbox_pending_events" not in scrape(stop.port)  # type: ignore[attr-defined]
        finally:
            stop()
        stop = metrics.serve_relay_metrics(0, get_settings(), "default")
        try:
            assert "pgoutbox_pending_events" in scrape(stop.port)  # type: ignore[attr-defined]
        finally:
            stop()
    finally:
        closed.close()


def test_a_database_outage_leaves_the_endpoint_up(endpoint, caplog):
    assert "pgoutbox_pending_events" in scrape(endpoint)
    with database.connect() as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgoutbox-metrics'"
                " AND datname = %s",
                (database.current_db_name(),),
            )
        ]
        assert database.terminate(conn, pids) == 1
    broken = scrape(endpoint)  # the gauges are missing for this scrape, the counters are not
    assert "pgoutbox_pending_events" not in broken
    assert "pgoutbox_events_published_total" in broken
    assert "cannot read the outbox's gauges" in caplog.text
    assert "pgoutbox_pending_events" in scrape(endpoint)  # reconnected


def test_without_prometheus_client_everything_is_a_no_op(monkeypatch):
    monkeypatch.setattr(metrics, "prometheus_client", None)
    metrics.observe_batch(size=1, published=1, failed=0, dead=0)
    metrics.observe_call("done")
    metrics.observe_published([datetime.datetime.now(datetime.UTC)])
    assert metrics.serve_relay_metrics(None, get_settings())() is None
    with pytest.raises(ImproperlyConfigured, match=r"pip install 'pgoutbox\[metrics\]'"):
        metrics.serve_relay_metrics(0, get_settings())


@pytest.mark.parametrize("value", ["-1", "65536", "http"])
def test_metrics_port_must_be_a_port(value: str) -> None:
    with pytest.raises(ValueError):
        metrics.port_number(value)


def test_the_grafana_dashboard_uses_only_metrics_that_exist(endpoint):
    dashboard = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
    exprs = [
        target["expr"]
        for panel in json.loads(dashboard.read_text())["panels"]
        for target in panel["targets"]
    ]
    used = {name for expr in exprs for name in re.findall(r"pgoutbox_\w+", expr)}
    served = {name.split("{")[0] for name in scrape(endpoint)}
    assert used and used <= served, used - served


def test_metrics_port_from_python_and_a_busy_port(endpoint):
    with pytest.raises(ValueError, match=r"metrics port must be 0 .* got 70000"):
        call_command("outbox_listen", metrics_port=70000)
    with pytest.raises(OSError, match=rf"cannot serve metrics on 0\.0\.0\.0:{endpoint}"):
        metrics.serve_relay_metrics(endpoint, get_settings())
    assert "pgoutbox_pending_events" in scrape(endpoint)  # the first server is unharmed


def test_consumer_counters():
    stop = metrics.serve_consumer_metrics(0)
    try:
        port = stop.port  # type: ignore[attr-defined]
        base = scrape(port)
        assert base['pgoutbox_consumer_messages_total{outcome="handled"}'] >= 0
        assert "pgoutbox_pending_events" not in base  # the consumer has no outbox gauges
        metrics.observe_consumed("handled")
        metrics.observe_consumed("duplicate")
        after = scrape(port)
        for outcome, grew in (("handled", 1), ("duplicate", 1), ("nacked", 0)):
            name = f'pgoutbox_consumer_messages_total{{outcome="{outcome}"}}'
            assert after[name] - base[name] == grew, outcome
    finally:
        stop()
    assert metrics.serve_consumer_metrics(None)() is None
    with pytest.raises(ValueError, match="consumer outcome must be one of"):
        metrics.observe_consumed("lost")
