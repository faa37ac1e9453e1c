"""Every transport side by side in one run, each next to its broker's raw-client floor.

Per transport: ``latency`` (``outbox_listen`` with that transport, a producer committing one
event per transaction at ``rate``, commit → consumer) and ``backlog`` (``backlog_count``
events committed with no listener, then one drains them), then the broker's floor with the same
messages (:mod:`benchmarks.floors`): one confirmed publish at a time at ``rate``, and flat out in
confirmed batches of 500. STOMP and AMQP publish to a RabbitMQ queue read by the same STOMP
consumer process; JetStream to a stream read by an ordered consumer.
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks.e2e import Listener, backlog_run, live_run
from benchmarks.floors import raw_run
from benchmarks.infra import Run

TRANSPORTS = {
    "stomp": "pgoutbox.transports.stomp.StompTransport",
    "amqp": "pgoutbox.transports.amqp.AmqpTransport",
    "jetstream": "pgoutbox.transports.nats.JetStreamTransport",
}
SUMMARY = ("p50_ms", "p99_ms", "lost", "duplicated", "drain_events_per_s")


def _measure(run: Run, name: str, count: int, rate: float, backlog: int) -> list[dict[str, Any]]:
    """Latency, its floor, backlog drain, its floor: for one transport, in that order."""
    sink = "jetstream" if name == "jetstream" else "stomp"
    listener = Listener(transport=TRANSPORTS[name], sink=sink)
    results = [
        live_run(
            run,
            label=f"latency-{name}",
            count=count,
            rate=rate,
            listener=listener,
            business_row=False,
        )
    ]
    results.append(raw_run(run, kind=name, label=f"floor-latency-{name}", count=count, rate=rate))
    results.append(backlog_run(run, label=f"backlog-{name}", count=backlog, listener=listener))
    results.append(raw_run(run, kind=name, label=f"floor-drain-{name}", count=backlog, rate=0))
    for result in results:
        result["transport"] = name
        brief = {k: result.get(k) for k in ("label", *SUMMARY, "publish_confirmed_per_s")}
        print(json.dumps(brief), flush=True)
    return results


def run_transports(
    run: Run, *, transports: list[str], count: int, rate: float, backlog_count: int
) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    table: dict[str, dict[str, Any]] = {}
    for name in transports:
        latency, floor_latency, backlog, floor_drain = _measure(
            run, name, count, rate, backlog_count
        )
        results += [latency, floor_latency, backlog, floor_drain]
        table[name] = {
            "latency_p50_ms": latency["p50_ms"],
            "latency_p99_ms": latency["p99_ms"],
            "floor_latency_p50_ms": floor_latency["p50_ms"],
            "floor_latency_p99_ms": floor_latency["p99_ms"],
            "drain_events_per_s": backlog["drain_events_per_s"],
            "floor_confirmed_per_s": floor_drain["publish_confirmed_per_s"],
            "drain_vs_floor": round(
                backlog["drain_events_per_s"] / floor_drain["publish_confirmed_per_s"], 2
            ),
            "lost": latency["lost"] + backlog["lost"],
            "duplicated": latency["duplicated"] + backlog["duplicated"],
        }
    print(json.dumps(table, indent=2), flush=True)
    for result in results:
        result.pop("progress", None)  # keeps the JSON small; the summary has the rates
    return {"summary": table, "results": results}
