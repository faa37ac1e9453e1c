"""End to end: producer process → ``outbox_listen`` subprocess → RabbitMQ (STOMP) → consumer.

Modes: ``steady`` (fixed rate), ``burst`` (flat out), ``backlog`` (events pile up with no
listener, then one starts: pure drain rate), ``idle`` (what an idle listener sends to
PostgreSQL). ``baseline`` is ``steady`` with pgoutbox in poll-only mode next to push.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.infra import ProcessMonitor, Run, percentiles, stop_process

MB = 1024 * 1024
QUANTILES = [*range(100), 99.5, 99.9, 100]


@dataclass(frozen=True)
class Listener:
    poll_interval: float = 1.0
    persistent: bool = True
    batch_size: int = 500
    transport: str = ""  # a dotted path; "" keeps the STOMP transport
    sink: str = "stomp"  # the consumer: "stomp" (a RabbitMQ queue) or "jetstream" (a stream)


def start_listener(run: Run, listener: Listener, log: str) -> Any:
    env = run.env(
        PGOUTBOX_BENCH_PERSISTENT="1" if listener.persistent else "0",
        PGOUTBOX_BENCH_BATCH_SIZE=str(listener.batch_size),
        PGOUTBOX_BENCH_TRANSPORT=listener.transport,
    )
    args = ["-m", "django", "outbox_listen", "--poll-interval", str(listener.poll_interval)]
    return run.start(args, log=log, env=env)


def start_consumer(
    run: Run, destination: str, expect: int, log: str, timeout: float, sink: str = "stomp"
) -> Any:
    out = run.tmp / f"{log}.tsv"
    module = "benchmarks.nats_consumer" if sink == "jetstream" else "benchmarks.consumer"
    args = ["-m", module, "--destination", destination, "--expect", str(expect)]
    process = run.start([*args, "--timeout", str(timeout), "--out", str(out)], log=log)
    run.wait_for_log(log, "ready", process, timeout=30)
    return process


def read_consumer(run: Run, log: str) -> list[tuple[float, dict[str, Any]]]:
    lines = (run.tmp / f"{log}.tsv").read_text().splitlines()
    return [(float(t), json.loads(body)) for t, body in (line.split("\t", 1) for line in lines)]


def analyze(
    produced: dict[str, Any], received: list[tuple[float, dict[str, Any]]]
) -> dict[str, Any]:
    """Delivered, lost, duplicated, out of order, and commit → consumer latency of a run."""
    count: int = produced["count"]
    per_tx: int = produced["per_tx"]
    commits: list[float] = produced["commits"]
    first: dict[int, float] = {}
    duplicated = out_of_order = 0
    highest = -1
    for received_at, body in received:
        seq = body.get("seq")
        if seq is None:  # warmup
            continue
        if seq in first:
            duplicated += 1
            continue
        first[seq] = received_at
        if seq < highest:
            out_of_order += 1
        highest = max(highest, seq)
    latencies = sorted((t - commits[seq // per_tx]) * 1000 for seq, t in first.items())
    last = max(first.values(), default=produced["started"])
    span = last - produced["started"]
    stats = percentiles(latencies)
    return {
        "events": count,
        "delivered": len(first),
        "lost": count - len(first),
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        **stats,
        "mean_ms": round(sum(latencies) / len(latencies), 3) if latencies else None,
        "events_per_s_end_to_end": round(len(first) / span, 1) if span > 0 else None,
        "producer_events_per_s": round(count / (produced["finished"] - produced["started"]), 1),
        "cdf_ms": [
            round(latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))], 3)
            for q in QUANTILES
        ]
        if latencies
        else [],
    }


def live_run(
    run: Run,
    *,
    label: str,
    count: int,
    rate: float,
    per_tx: int = 1,
    listener: Listener = Listener(),
    notify: str | None = None,
    business_row: bool = True,
    warmup: int = 20,
    stamp_inside: bool = False,
) -> dict[str, Any]:
    """Listener and consumer running, then a producer: steady (``rate``) or burst (0).
    ``stamp_inside``: latency counts from inside the producer's transaction (before COMMIT)."""
    run.sql("TRUNCATE pgoutbox_event")
    destination = run.destination(listener.sink)
    process = start_listener(run, listener, f"{label}-listener.log")
    run.wait_for_log(f"{label}-listener.log", "relay connected", process, timeout=60)
    expected_seconds = count / (rate * per_tx) if rate else count / 500
    consumer = start_consumer(
        run,
        destination,
        count,
        f"{label}-consumer",
        timeout=expected_seconds + 120,
        sink=listener.sink,
    )
    produced_path = run.tmp / f"{label}-producer.json"
    args = ["-m", "benchmarks.producer", "--destination", destination, "--count", str(count)]
    args += ["--rate", str(rate), "--per-tx", str(per_tx), "--warmup", str(warmup)]
    args += ["--out", str(produced_path)]
    if notify:
        args += ["--notify", notify]
    if not business_row:
        args.append("--no-business-row")
    if stamp_inside:
        args.append("--stamp-inside")
    with ProcessMonitor(process.pid) as monitor:
        cpu_before = monitor.cpu_seconds()
        rss_before = monitor.rss()
        producer = run.start(args, log=f"{label}-producer.log")
        producer.wait(timeout=expected_seconds + 120)
        if producer.returncode != 0:
            raise RuntimeError(run.log_text(f"{label}-producer.log"))
        consumer.wait(timeout=expected_seconds + 120)
        cpu = monitor.cpu_seconds() - cpu_before
        peak = monitor.peak_rss()
    exit_code = stop_process(process)
    result = analyze(json.loads(produced_path.read_text()), read_consumer(run, f"{label}-consumer"))
    return {
        "label": label,
        "settings": {
            "rate_tx_per_s": rate or "flat out",
            "events_per_tx": per_tx,
            "business_row": business_row,
            "pgoutbox.notify": notify or "on (default)",
            "poll_interval_s": listener.poll_interval,
            "stomp_persistent": listener.persistent,
            "batch_size": listener.batch_size,
            "warmup_events": warmup,
            "stamped": "before COMMIT" if stamp_inside else "after COMMIT",
        },
        **result,
        "listener_cpu_s": round(cpu, 3),
        "listener_cpu_s_per_1000_events": round(cpu / count * 1000, 4),
        "listener_rss_mb_before": round(rss_before / MB, 1),
        "listener_peak_rss_mb": round(peak / MB, 1),
        "listener_exit_code": exit_code,
    }


def backlog_run(
    run: Run, *, label: str, count: int, listener: Listener, per_tx: int = 500
) -> dict[str, Any]:
    """``count`` events committed with no listener; then one starts and drains them."""
    run.sql("TRUNCATE pgoutbox_event")
    run.sql("VACUUM ANALYZE pgoutbox_event")
    destination = run.destination(listener.sink)
    consumer = start_consumer(
        run, destination, count, f"{label}-consumer", timeout=count / 500 + 120, sink=listener.sink
    )
    produced_path = run.tmp / f"{label}-producer.json"
    args = ["-m", "benchmarks.producer", "--destination", destination, "--count", str(count)]
    args += ["--per-tx", str(per_tx), "--out", str(produced_path)]
    producer = run.start(args, log=f"{label}-producer.log")
    producer.wait(timeout=count / 200 + 120)
    if producer.returncode != 0:
        raise RuntimeError(run.log_text(f"{label}-producer.log"))
    [(pending,)] = run.sql("SELECT count(*) FROM pgoutbox_event")
    run.sql("VACUUM ANALYZE pgoutbox_event")

    log = f"{label}-listener.log"
    process = start_listener(run, listener, log)
    progress: list[tuple[float, int]] = []
    with ProcessMonitor(process.pid, interval=0.05) as monitor:
        connected_at = run.wait_for_log(log, "relay connected", process, timeout=60)
        cpu_before = monitor.cpu_seconds()
        rss_at_connect = monitor.rss()
        deadline = time.monotonic() + count / 1000 + 120
        remaining = pending
        while remaining and time.monotonic() < deadline:
            time.sleep(0.05)
            [(remaining,)] = run.sql("SELECT count(*) FROM pgoutbox_event")
            progress.append((time.time(), remaining))
        drained_at = time.time()
        cpu = monitor.cpu_seconds() - cpu_before
        consumer.wait(timeout=count / 1000 + 120)
        samples = list(monitor.samples)
    exit_code = stop_process(process)
    result = analyze(json.loads(produced_path.read_text()), read_consumer(run, f"{label}-consumer"))
    received = read_consumer(run, f"{label}-consumer")
    last_received = max((t for t, body in received if "seq" in body), default=drained_at)
    # RSS once a tenth was drained (buffers, broker connection warm) against the end.
    tenth_at = next((t for t, left in progress if left <= pending * 0.9), connected_at)
    rss_at_tenth = next((rss for t, rss in samples if t >= tenth_at), rss_at_connect)
    rss_end = samples[-1][1] if samples else rss_at_connect
    drain_seconds = drained_at - connected_at
    return {
        "label": label,
        "settings": {
            "events_per_tx": per_tx,
            "business_row": True,
            "stomp_persistent": listener.persistent,
            "batch_size": listener.batch_size,
            "poll_interval_s": listener.poll_interval,
        },
        **{k: v for k, v in result.items() if k not in ("events_per_s_end_to_end",)},
        "pending_at_start": pending,
        "drain_seconds": round(drain_seconds, 3),
        "drain_events_per_s": round(pending / drain_seconds, 1),
        "events_per_s_end_to_end": round(
            len([1 for t, b in received if "seq" in b]) / (last_received - connected_at), 1
        ),
        "listener_cpu_s": round(cpu, 3),
        "listener_cpu_s_per_1000_events": round(cpu / pending * 1000, 4),
        "listener_rss_mb_at_connect": round(rss_at_connect / MB, 1),
        "listener_rss_mb_after_10pct": round(rss_at_tenth / MB, 1),
        "listener_rss_mb_end": round(rss_end / MB, 1),
        "listener_rss_growth_mb": round((rss_end - rss_at_tenth) / MB, 1),
        "listener_peak_rss_mb": round(max((r for _, r in samples), default=0) / MB, 1),
        "listener_exit_code": exit_code,
        "progress": [(round(t - connected_at, 3), left) for t, left in progress],
    }


def idle_run(run: Run, *, seconds: float = 30.0, poll_interval: float = 1.0) -> dict[str, Any]:
    """Transactions an idle listener runs, from ``pg_stat_database`` of the scratch database.

    Expected: one (rolled back) claim per poll and one heartbeat per HEARTBEAT_INTERVAL (10 s).
    Backends report their counters within PostgreSQL's stats flush delay (≤ 10 s when idle),
    so the window is long and the figures are ± a few transactions.
    """
    run.sql("TRUNCATE pgoutbox_event")
    log = "idle-listener.log"
    process = start_listener(run, Listener(poll_interval=poll_interval), log)
    run.wait_for_log(log, "relay connected", process, timeout=60)
    time.sleep(12)  # past start-up and the first stats flush

    def counters() -> tuple[int, int]:
        [(commits, rollbacks)] = run.sql(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        return int(commits), int(rollbacks)

    with ProcessMonitor(process.pid) as monitor:
        cpu_before = monitor.cpu_seconds()
        before = counters()
        time.sleep(seconds)
        after = counters()
        cpu = monitor.cpu_seconds() - cpu_before
    exit_code = stop_process(process)
    commits = after[0] - before[0] - 1  # our own second counters() query
    rollbacks = after[1] - before[1]
    return {
        "label": "idle",
        "window_s": seconds,
        "poll_interval_s": poll_interval,
        "heartbeat_interval_s": 10.0,
        "transactions_committed": commits,
        "transactions_rolled_back": rollbacks,
        "expected_polls": round(seconds / poll_interval),
        "expected_heartbeats": round(seconds / 10.0),
        "listener_cpu_s": round(cpu, 3),
        "listener_exit_code": exit_code,
    }
