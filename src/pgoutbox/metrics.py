"""Prometheus metrics of the relay (extra ``metrics``: prometheus-client).

Without prometheus_client every function here does nothing, so the relay calls them
unconditionally. Counters and histograms are fed by the relay through :func:`observe_batch`,
:func:`observe_published` and :func:`observe_call`; the gauges are read from the database when
Prometheus scrapes (:class:`OutboxCollector`), on a connection of their own.
"""

from __future__ import annotations

import datetime
import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pgoutbox.conf import Settings
from pgoutbox.sql import query

prometheus_client: Any
try:
    import prometheus_client
    from prometheus_client.core import GaugeMetricFamily
except ImportError:  # the 'metrics' extra is not installed
    prometheus_client = None

logger = logging.getLogger(__name__)

CALL_OUTCOMES = ("done", "failed", "dead")
# The subscribe consumer: handled (acked after the callback), duplicate (already in the inbox,
# acked and skipped), nacked (dead-lettered by the broker).
CONSUMED_OUTCOMES = ("handled", "duplicate", "nacked")
# Seconds from the producer's commit (the row's created_at) to the broker's confirmation.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)


def available() -> bool:
    return prometheus_client is not None


@functools.cache
def _metrics() -> dict[str, Any]:
    """The counters and histograms, created once in prometheus_client's default registry."""
    assert prometheus_client is not None
    p = prometheus_client
    return {
        "published": p.Counter("pgoutbox_events_published", "Events the broker confirmed"),
        "failed": p.Counter("pgoutbox_events_failed", "Failed attempts, to be retried"),
        "dead": p.Counter("pgoutbox_events_dead", "Events dead-lettered"),
        "calls": p.Counter("pgoutbox_calls", "Function events run, by outcome", ["outcome"]),
        "latency": p.Histogram(
            "pgoutbox_commit_to_publish_seconds",
            "From the event's created_at to its publication",
            buckets=LATENCY_BUCKETS,
        ),
        "batch": p.Histogram(
            "pgoutbox_batch_size", "Events claimed per batch", buckets=BATCH_BUCKETS
        ),
        "consumed": p.Counter(
            "pgoutbox_consumer_messages", "Messages the subscribe consumer settled", ["outcome"]
        ),
    }


def observe_batch(*, size: int, published: int, failed: int, dead: int) -> None:
    """One relay batch: ``size`` rows claimed, ``published`` confirmed by the broker, ``failed``
    attempts to retry later and ``dead`` rows dead-lettered (calls included)."""
    if prometheus_client is None:
        return
    metrics = _metrics()
    metrics["batch"].observe(size)
    # A counter's inc(0) changes nothing but still takes its lock: most batches fail nothing.
    for name, count in (("published", published), ("failed", failed), ("dead", dead)):
        if count:
            metrics[name].inc(count)


def observe_published(
    created_at: Iterable[datetime.datetime], *, now: datetime.datetime | None = None
) -> None:
    """Commit-to-publish latency of published events, from their ``created_at``."""
    if prometheus_client is None:
        return
    histogram = _metrics()["latency"]
    moment = now or datetime.datetime.now(datetime.UTC)
    for created in created_at:
        histogram.observe(max((moment - created).total_seconds(), 0.0))


def observe_call(outcome: str) -> None:
    """One function event run: ``done``, ``failed`` (will be retried) or ``dead``."""
    if outcome not in CALL_OUTCOMES:
        raise ValueError(f"call outcome must be one of {CALL_OUTCOMES}, got {outcome!r}")
    if prometheus_client is not None:
        _metrics()["calls"].labels(outcome=outcome).inc()


def observe_consumed(outcome: str) -> None:
    """One message settled by the ``subscribe`` consumer: ``handled``, ``duplicate``, ``nacked``."""
    if outcome not in CONSUMED_OUTCOMES:
        raise ValueError(f"consumer outcome must be one of {CONSUMED_OUTCOMES}, got {outcome!r}")
    if prometheus_client is not None:
        _metrics()["consumed"].labels(outcome=outcome).inc()


class OutboxCollector:
    """Gauges read at scrape time: pending events, the oldest one's age, NOTIFY queue usage.

    ``connect`` opens an autocommit psycopg connection (kept, reopened after an error). A
    failed read is logged and yields no gauges for that scrape; it never breaks the endpoint.
    """

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._conn: Any = None
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Any]:
        with self._lock:
            row = self._read()
        if row is None:
            return
        pending, oldest, usage = row
        yield GaugeMetricFamily("pgoutbox_pending_events", "Events not yet published", pending)
        yield GaugeMetricFamily(
            "pgoutbox_oldest_pending_age_seconds", "Age of the oldest pending event", oldest
        )
        yield GaugeMetricFamily(
            "pgoutbox_notify_queue_usage", "pg_notification_queue_usage(), 0 to 1", usage
        )

    def _read(self) -> tuple[float, float, float] | None:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            row = self._conn.execute(query("metrics_gauges")).fetchone()
        except Exception as exc:
            logger.warning("metrics: cannot read the outbox's gauges: %s", exc)
            self.close()
            return None
        return float(row[0]), float(row[1]), float(row[2])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def port_number(value: Any) -> int:
    """``--metrics-port`` as the command line gives it (a str) or ``call_command`` does (an int
    or a str): 0 (any free port, logged) to 65535. Raises ``ValueError`` naming the option and
    the value (argparse reports it as an invalid value)."""
    port = -1
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        port = int(value)
    if not 0 <= port < 65536:
        raise ValueError(
            f"--metrics-port: a metrics port must be 0 (any free port) to 65535, got {value!r}"
        )
    return port


class _Exported:
    """What one endpoint serves: the default registry (pgoutbox's counters and histograms, and
    whatever else the process registered there) and that endpoint's database gauges."""

    def __init__(self, gauges: OutboxCollector | None) -> None:
        self.gauges = gauges

    def describe(self) -> list[Any]:
        return []  # registering reads nothing from the database

    def collect(self) -> Iterator[Any]:
        yield from prometheus_client.REGISTRY.collect()
        if self.gauges is not None:
            yield from self.gauges.collect()


def serve_relay_metrics(
    port: int | str | None, settings: Settings, database: str | None = None
) -> Callable[[], None]:
    """:func:`serve` for a relay on ``database`` (default ``PGOUTBOX['DATABASE']``), on
    ``port`` or else ``METRICS_PORT``; when both are None, nothing (the returned function does
    nothing). The gauges are read the way the relay reaches that database (its
    ``RELAY_CONNECTIONS`` entry applied).

    The gauges' session is named ``pgoutbox-metrics``, so it never counts as a relay.
    """
    # call_command("outbox_listen", metrics_port=...) skips argparse: an int or a str.
    number = settings.metrics_port if port is None else port_number(port)
    if number is None:
        return lambda: None
    from pgoutbox import db

    alias = database or settings.database
    params = {
        **db.connection_params(alias, settings.relay_connection(alias)),
        "application_name": "pgoutbox-metrics",
    }
    return serve(number, lambda: db.connect(params, autocommit=True))


def serve_consumer_metrics(port: int | str | None) -> Callable[[], None]:
    """:func:`serve` for the ``subscribe`` consumer (counters only); None: nothing."""
    if port is None:
        return lambda: None
    return serve(port_number(port), None)


def serve(
    port: int, connect: Callable[[], Any] | None, *, addr: str = "0.0.0.0"
) -> Callable[[], None]:
    """Serve ``/metrics`` on ``port`` (0: a free one): the default registry, plus the gauges of
    an :class:`OutboxCollector` on ``connect``'s connections unless ``connect`` is None. Return
    a function that stops the server. Raises ``ImproperlyConfigured`` without the ``metrics``
    extra."""
    if prometheus_client is None:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "metrics need prometheus-client: pip install 'pgoutbox[metrics]'"
        )
    collector = None if connect is None else OutboxCollector(connect)
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(_Exported(collector))
    created = _metrics()  # the counters appear (at 0) from the first scrape
    for name, outcomes in (("calls", CALL_OUTCOMES), ("consumed", CONSUMED_OUTCOMES)):
        for outcome in outcomes:
            created[name].labels(outcome=outcome)
    try:
        server, thread = prometheus_client.start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        raise OSError(f"cannot serve metrics on {addr}:{port}: {exc}") from exc
    logger.info("metrics on port %d", server.server_port, extra={"port": server.server_port})

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)
        if collector is not None:
            collector.close()

    stop.port = server.server_port  # type: ignore[attr-defined]
    return stop
