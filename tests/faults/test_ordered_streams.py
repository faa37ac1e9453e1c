"""Ordered message streams under load and faults, on every transport: four listeners share the
streams and a consumer sees each stream in commit order; listeners SIGKILLed at random points
only ever repeat messages already delivered, never deliver one before an earlier one."""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import pytest
from django.db import transaction

import pgoutbox
from tests.support import database
from tests.support.function_events import run_producers
from tests.support.ledger import Delivery, Ledger
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)

LISTENERS = 4
PRODUCERS = 4
STREAMS = 12
OUTAGE_SECONDS = 4.0


class OrderedLoad:
    """Producers of ordered messages on ``STREAMS`` streams, recording each stream's commit
    order (the producer lock is held to the commit, so the order of recording inside the
    transaction is the commit order) and the committed message ids in ``ledger``."""

    def __init__(self, ledger: Ledger, destination: str) -> None:
        self.ledger = ledger
        self.destination = destination
        self.committed: dict[str, list[int]] = defaultdict(list)
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self.stop = threading.Event()

    def produce(self, producer: int, count: int, *, interval: float = 0.0) -> None:
        rng = random.Random(producer)
        for _ in range(count):
            if self.stop.is_set():
                return
            # Streams in one order in every transaction (by name), or two producers holding
            # each other's stream would fail with KeepOrderConflict rather than deadlock.
            streams = sorted(
                f"stream-{rng.randrange(STREAMS):02}" for _ in range(rng.randint(1, 3))
            )
            with transaction.atomic():
                for stream in streams:
                    self._send(stream)
            time.sleep(interval)

    def _send(self, stream: str) -> None:
        n = next(self._numbers)
        body = {"stream": stream, "n": n}
        message_id = pgoutbox.send(self.destination, body, stream=stream, ordered=True)
        with self._lock:
            self.committed[stream].append(n)
        transaction.on_commit(lambda: self.ledger.record([message_id]))

    def background(self, count: int, interval: float) -> threading.Thread:
        thread = threading.Thread(
            target=run_producers,
            args=(lambda p: self.produce(p, count, interval=interval), PRODUCERS),
            daemon=True,
        )
        thread.start()
        return thread

    def first_deliveries(self, deliveries: Sequence[Delivery]) -> dict[str, list[int]]:
        """Each stream's messages in the order of their first delivery (a consumer that
        deduplicates by message id sees this)."""
        seen: set[str] = set()
        streams: dict[str, list[int]] = defaultdict(list)
        for delivery in deliveries:
            if delivery.message_id not in seen:
                seen.add(delivery.message_id)
                body = json.loads(delivery.body)
                streams[body["stream"]].append(body["n"])
        return dict(streams)

    def check(self, sink: Any, missing: set[str], figures: dict[str, Any], **measured: Any) -> Any:
        """Account for what ``sink`` received, report it in ``figures`` (with ``measured``),
        and assert that nothing was lost or unexpected and every stream came in commit order;
        return the accounting."""
        deliveries = sink.snapshot()
        accounting = self.ledger.account(deliveries)
        figures.update(
            **measured,
            events=accounting.committed,
            lost=len(accounting.lost),
            extra_copies=accounting.duplicate_copies,
        )
        assert not missing and not accounting.lost, f"{accounting} ({measured})"
        assert not accounting.unexpected
        assert self.out_of_order(deliveries) == {}, str(measured)
        return accounting

    def out_of_order(self, deliveries: Sequence[Delivery]) -> dict[str, Any]:
        first = self.first_deliveries(deliveries)
        return {
            stream: {"committed": numbers[:20], "delivered": first.get(stream, [])[:20]}
            for stream, numbers in self.committed.items()
            if first.get(stream) != numbers
        }


def test_four_listeners_publish_every_stream_in_commit_order(
    relay_process, transport_setup, ledger, pg, figures
):
    sink = transport_setup.sink()
    overrides = {"BATCH_SIZE": 20, **transport_setup.settings}
    relays = [relay_process("outbox_listen", overrides=overrides) for _ in range(LISTENERS)]
    for relay in relays:
        relay.wait_connected()
    load = OrderedLoad(ledger, sink.destination)
    started = time.monotonic()
    run_producers(lambda p: load.produce(p, 150, interval=0.002), PRODUCERS)
    missing = sink.wait_for_ids(ledger.ids(), timeout=60)
    delivered_in = time.monotonic() - started
    sink.quiet_for(0.5)
    exit_codes = [relay.terminate() for relay in relays]
    accounting = load.check(
        sink,
        missing,
        figures,
        transport=transport_setup.name,
        streams=len(load.committed),
        all_delivered_s=round(delivered_in, 2),
    )
    assert not accounting.duplicates, str(accounting)
    assert exit_codes == [0] * LISTENERS
    assert database.event_status(pg) == {}


KILLS = 8


def test_listeners_sigkilled_at_random_points_repeat_but_never_reorder(
    relay_process, transport_setup, ledger, pg, figures
):
    seed = int(os.environ.get("PGOUTBOX_FAULT_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    sink = transport_setup.sink()
    overrides = {"BATCH_SIZE": 25, "POLL_INTERVAL": 0.5, **transport_setup.settings}
    load = OrderedLoad(ledger, sink.destination)
    run_producers(lambda p: load.produce(p, 100), PRODUCERS)  # a backlog for the first kills
    producing = load.background(10**9, interval=0.01)
    # Two listeners at a time: one killed at a random point while the other goes on.
    steady = relay_process("outbox_listen", overrides=overrides)
    for _ in range(KILLS):
        before = sink.count()
        doomed = relay_process("outbox_listen", overrides=overrides)
        assert sink.wait_for_count(before + 1, timeout=15) > before, doomed.output()[-2000:]
        time.sleep(rng.uniform(0.0, 0.15))
        doomed.kill()
    load.stop.set()
    producing.join(30)
    missing = sink.wait_for_ids(ledger.ids(), timeout=60)
    sink.quiet_for(1.0)
    assert steady.terminate() == 0
    load.check(sink, missing, figures, transport=transport_setup.name, seed=seed, kills=KILLS)
    assert database.event_status(pg) == {}


def test_a_broker_outage_holds_every_stream_at_its_head_then_resumes_in_order(
    relay_process, transport_setup, ledger, pg, figures
):
    proxy = TcpProxy(transport_setup.address)
    try:
        sink = transport_setup.sink()  # straight to the broker: only the relay's path is cut
        listener = relay_process(
            overrides={
                **transport_setup.settings,
                **transport_setup.url(("127.0.0.1", proxy.port)),
                "RECONNECT_BACKOFF_MAX": 1,
                "STOMP_CONNECT_TIMEOUT": 2,
                "STOMP_RECEIPT_TIMEOUT": 2,
                "MAX_ATTEMPTS": 2,
                "BATCH_SIZE": 50,
            }
        )
        listener.wait_connected()
        load = OrderedLoad(ledger, sink.destination)
        producing = load.background(10**9, interval=0.02)
        sink.wait_for_count(100, timeout=15)
        proxy.cut()
        time.sleep(OUTAGE_SECONDS)
        dead, max_attempts = pg.execute(
            "SELECT count(*) FILTER (WHERE status = 'dead'), coalesce(max(attempts), 0)"
            " FROM pgoutbox_event"
        ).fetchone()
        proxy.restore()
        time.sleep(1.0)
        load.stop.set()
        producing.join(30)
        missing = sink.wait_for_ids(ledger.ids(), timeout=60)
        sink.quiet_for(0.5)
        assert listener.terminate() == 0
    finally:
        proxy.close()
    load.check(
        sink,
        missing,
        figures,
        transport=transport_setup.name,
        outage_s=OUTAGE_SECONDS,
        max_attempts_during_outage=max_attempts,
    )
    assert dead == 0 and max_attempts > 2, "an outage counts attempts but kills nothing"
    assert database.event_status(pg) == {}
