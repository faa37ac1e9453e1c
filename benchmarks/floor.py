"""pgoutbox against the floors and the peers, in one run, as ratios.

Per repetition, interleaved so that a noisy neighbour hurts every figure alike:

- the broker's floor: raw stomp.py, pipelined in batches of 500, a receipt per message,
  persistent and transient, the same bodies (:func:`benchmarks.floors.raw_run`);
- the database's floor: insert + NOTIFY commit → a bare psycopg listener wakes; insert →
  claimed and deleted by a bare SQL loop; and that loop's drain rate
  (:mod:`benchmarks.db_floor`);
- pgoutbox on the same workload: backlog drain, persistent and transient; steady ``rate``
  tx/s commit → consumer with receipts; ``outbox_listen``'s CPU per 1,000 events (psutil);
- the peers (:mod:`benchmarks.peers`): jaiminho publish-on-commit, jaiminho keep-order relay
  at 0.1 s, django-outbox-pattern's publisher, at the same steady rate.

Latency counts from inside the producer's transaction (before COMMIT) to a separate stomp.py
consumer process, for every producer alike. Figures are the median of the repetitions; the
ratios are taken between figures of this run only. Optionally (``--adaptive-seconds``), the
adaptive NOTIFY check of :mod:`benchmarks.write_overhead` at 16 clients.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from benchmarks.db_floor import drain_run, latency_run
from benchmarks.e2e import Listener, backlog_run, live_run
from benchmarks.floors import raw_run
from benchmarks.infra import Run
from benchmarks.peers import PEERS, PeerDatabase, ensure_venv, peer_run

FIGURES = (
    "drain_events_per_s",
    "publish_confirmed_per_s",
    "p50_ms",
    "p99_ms",
    "listener_cpu_s_per_1000_events",
    "relay_cpu_s_per_1000_events",
    "lost",
    "duplicated",
)


def _median(values: list[Any]) -> Any:
    numbers = [v for v in values if isinstance(v, int | float)]
    return round(statistics.median(numbers), 4) if numbers else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _one_rep(
    run: Run, db: PeerDatabase | None, rep: int, *, count: int, backlog: int, rate: float
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []

    def keep(name: str, result: dict[str, Any]) -> None:
        result.pop("cdf_ms", None)
        result.pop("progress", None)
        result["name"], result["rep"] = name, rep
        results.append(result)
        print(json.dumps({"name": name, **{k: result.get(k) for k in FIGURES}}), flush=True)

    for persistent in (True, False):
        tag = "persistent" if persistent else "transient"
        keep(
            f"broker-floor-{tag}",
            raw_run(
                run,
                kind="stomp",
                label=f"broker-floor-{tag}-{rep}",
                count=backlog,
                rate=0,
                persistent=persistent,
            ),
        )
        keep(
            f"pgoutbox-backlog-{tag}",
            backlog_run(
                run,
                label=f"backlog-{tag}-{rep}",
                count=backlog,
                listener=Listener(persistent=persistent),
            ),
        )
    keep("db-floor-wake", latency_run(run, mode="wake", count=count, rate=rate))
    keep("db-floor-claim", latency_run(run, mode="claim", count=count, rate=rate))
    keep("db-floor-drain", drain_run(run, count=backlog))
    keep(
        "pgoutbox-steady",
        live_run(
            run,
            label=f"steady-{rep}",
            count=count,
            rate=rate,
            business_row=False,
            stamp_inside=True,
        ),
    )
    if db is not None:
        for peer in PEERS:
            keep(peer, peer_run(run, db, peer=peer, label=f"{peer}-{rep}", count=count, rate=rate))
    return results


def run_floor(
    run: Run,
    *,
    count: int,
    backlog: int,
    reps: int,
    rate: float,
    peers: bool,
    adaptive_seconds: float,
) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    adaptive: dict[str, Any] = {}
    if adaptive_seconds:
        from benchmarks.write_overhead import run_write_overhead

        adaptive = run_write_overhead(
            run, clients=[16], modes=["none", "adaptive"], seconds=adaptive_seconds, rounds=1
        )
        for r in adaptive["results"]:
            r.pop("latencies_ms", None)
    python = ensure_venv() if peers else None
    db = PeerDatabase(run, python) if python is not None else None
    if db is not None:
        db.__enter__()
    try:
        for rep in range(reps):
            results += _one_rep(run, db, rep, count=count, backlog=backlog, rate=rate)
    finally:
        if db is not None:
            db.__exit__()
    figures: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["name"] for r in results):
        mine = [r for r in results if r["name"] == name]
        figures[name] = {
            k: _median([r.get(k) for r in mine]) for k in FIGURES if any(k in r for r in mine)
        }
    pg = figures["pgoutbox-steady"]
    poc = figures.get("jaiminho-publish-on-commit", {})
    ratios = {
        "backlog persistent / broker floor persistent": _ratio(
            figures["pgoutbox-backlog-persistent"]["drain_events_per_s"],
            figures["broker-floor-persistent"]["publish_confirmed_per_s"],
        ),
        "backlog transient / broker floor transient": _ratio(
            figures["pgoutbox-backlog-transient"]["drain_events_per_s"],
            figures["broker-floor-transient"]["publish_confirmed_per_s"],
        ),
        "backlog persistent / db floor drain": _ratio(
            figures["pgoutbox-backlog-persistent"]["drain_events_per_s"],
            figures["db-floor-drain"]["drain_events_per_s"],
        ),
        "steady p50 / jaiminho publish-on-commit p50": _ratio(pg["p50_ms"], poc.get("p50_ms")),
        "steady p99 / jaiminho publish-on-commit p99": _ratio(pg["p99_ms"], poc.get("p99_ms")),
        "steady listener CPU / bare claim loop CPU": _ratio(
            pg["listener_cpu_s_per_1000_events"],
            figures["db-floor-claim"]["listener_cpu_s_per_1000_events"],
        ),
        "steady p50 / db floor claim p50": _ratio(
            pg["p50_ms"], figures["db-floor-claim"]["p50_ms"]
        ),
        "steady p99 / db floor claim p99": _ratio(
            pg["p99_ms"], figures["db-floor-claim"]["p99_ms"]
        ),
    }
    for peer in PEERS:
        if peer in figures:
            ratios[f"steady p50 / {peer} p50"] = _ratio(pg["p50_ms"], figures[peer]["p50_ms"])
    checks: dict[str, tuple[float | None, str, float]] = {
        "backlog drain / broker floor, persistent": (
            ratios["backlog persistent / broker floor persistent"],
            ">=",
            0.9,
        ),
        "backlog drain / broker floor, transient": (
            ratios["backlog transient / broker floor transient"],
            ">=",
            0.9,
        ),
        "steady listener CPU s per 1000 events": (pg["listener_cpu_s_per_1000_events"], "<=", 0.3),
        "backlog listener CPU s per 1000 events, persistent": (
            figures["pgoutbox-backlog-persistent"]["listener_cpu_s_per_1000_events"],
            "<=",
            0.1,
        ),
        "backlog listener CPU s per 1000 events, transient": (
            figures["pgoutbox-backlog-transient"]["listener_cpu_s_per_1000_events"],
            "<=",
            0.1,
        ),
        "lost": (sum(f.get("lost") or 0 for f in figures.values()), "<=", 0),
    }
    if poc:
        checks["steady p50 / jaiminho publish-on-commit p50"] = (
            ratios["steady p50 / jaiminho publish-on-commit p50"],
            "<=",
            1.0,
        )
        checks["steady p99 / jaiminho publish-on-commit p99"] = (
            ratios["steady p99 / jaiminho publish-on-commit p99"],
            "<=",
            1.0,
        )
    out: dict[str, Any] = {
        "settings": {
            "count": count,
            "backlog_count": backlog,
            "reps": reps,
            "rate_tx_per_s": rate,
            "figures": "median of the repetitions",
            "latency": "from inside the producer's transaction (before COMMIT) to the consumer",
        },
        "figures": figures,
        "ratios": ratios,
    }
    if adaptive:
        out["adaptive"] = adaptive
        for name, check in adaptive.get("targets", {}).items():
            checks[name] = (check["measured"], check["target"][:2], float(check["target"][3:]))
    print(json.dumps({"figures": figures, "ratios": ratios}, indent=2), flush=True)
    out["checks"] = checks
    out["results"] = results
    return out
