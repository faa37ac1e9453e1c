"""The database's own floor: what PostgreSQL alone gives a relay, with no relay code and no broker.

``wake``: a producer commits one ``pgoutbox_event`` row per transaction at ``rate`` (the
trigger NOTIFYs); a bare psycopg session LISTENing in another process timestamps every
wake-up. Latency: the producer's stamp (inside its transaction, before COMMIT) → the first
wake-up after it.

``claim``: the same, but the bare session claims, deletes and commits what it was woken for
(one ``DELETE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`` of up to 500
rows, repeated while full): stamp → row deleted and committed. And as a drain: ``count``
rows committed first, then the same loop deletes them all (rows per second). The bare
session's CPU per 1,000 events is what a relay with no broker and no code of its own spends.

``python -m benchmarks.db_floor --database D --out FILE`` is the bare session; it prints
``ready`` once it LISTENs, drains once, then drains on every notification until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from types import FrameType
from typing import Any

from benchmarks.infra import PG, ProcessMonitor, Run, percentiles, pg_connect, stop_process

CHANNEL = "pgoutbox"
CLAIM_DELETE = """
DELETE FROM pgoutbox_event WHERE id IN (
    SELECT id FROM pgoutbox_event WHERE status = 'pending' ORDER BY id LIMIT 500
    FOR UPDATE SKIP LOCKED)
RETURNING body_bytes
"""
INSERT = """
INSERT INTO pgoutbox_event (destination, body_bytes, headers)
SELECT '/queue/pgoutbox-bench-db-floor', convert_to(json_build_object('seq', n)::text, 'UTF8'),
       '{"content-type": "application/json"}'::jsonb
FROM generate_series(%(first)s::int, %(last)s::int) AS n
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", required=True)
    parser.add_argument("--mode", choices=["wake", "claim"], required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    import psycopg
    from psycopg import sql

    listen = psycopg.connect(dbname=args.database, autocommit=True, **PG)
    work = psycopg.connect(dbname=args.database, **PG)
    listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
    records: list[tuple[float, int]] = []  # (time, seq); seq -1: a wake-up

    def drain() -> None:
        while True:
            rows = work.execute(CLAIM_DELETE).fetchall()
            work.commit()
            done = time.time()
            records.extend((done, json.loads(bytes(body))["seq"]) for (body,) in rows)
            if len(rows) < 500:
                return

    started = time.time()
    print("ready", flush=True)
    if args.mode == "claim":
        drain()
    while not stopping:
        for _ in listen.notifies(timeout=0.2, stop_after=1):
            records.append((time.time(), -1))
            if args.mode == "claim":
                drain()
    with open(args.out, "w") as out:
        json.dump({"started": started, "records": records}, out)


def _start(run: Run, mode: str, label: str) -> tuple[Any, str]:
    out = str(run.tmp / f"{label}.json")
    log = f"{label}.log"
    args = ["-m", "benchmarks.db_floor", "--database", run.database, "--mode", mode, "--out", out]
    process = run.start(args, log=log)
    run.wait_for_log(log, "ready", process, timeout=30)
    return process, out


def _read(process: Any, out: str) -> dict[str, Any]:
    stop_process(process)
    with open(out) as file:
        data: dict[str, Any] = json.load(file)
    return data


def latency_run(run: Run, *, mode: str, count: int, rate: float) -> dict[str, Any]:
    """One event per transaction at ``rate``; latency to the bare session's wake-up (``wake``)
    or to its delete's commit (``claim``)."""
    run.sql("TRUNCATE pgoutbox_event")
    label = f"db-floor-{mode}-{len(run.queues)}-{time.monotonic_ns()}"
    process, out = _start(run, mode, label)
    stamps: list[float] = []
    with pg_connect(run.database) as conn, ProcessMonitor(process.pid) as monitor:
        cpu_before = monitor.cpu_seconds()
        conn.autocommit = False
        origin = time.monotonic()
        for seq in range(count):
            delay = origin + seq / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            conn.execute(INSERT, {"first": seq, "last": seq})
            stamps.append(time.time())
            conn.commit()
        time.sleep(0.5)
        cpu = monitor.cpu_seconds() - cpu_before
    records = _read(process, out)["records"]
    if mode == "wake":
        wakes = sorted(t for t, _ in records)
        latencies, i = [], 0
        for stamp in stamps:
            while i < len(wakes) and wakes[i] < stamp:
                i += 1
            if i < len(wakes):
                latencies.append((wakes[i] - stamp) * 1000)
    else:
        done = {seq: t for t, seq in records if seq >= 0}
        latencies = [(done[seq] - stamp) * 1000 for seq, stamp in enumerate(stamps) if seq in done]
    return {
        "label": f"db-floor-{mode}",
        "settings": {"rate_tx_per_s": rate, "stamped": "before COMMIT"},
        "events": count,
        "measured": len(latencies),
        **percentiles(latencies),
        "listener_cpu_s_per_1000_events": round(cpu / count * 1000, 4),
    }


def drain_run(run: Run, *, count: int) -> dict[str, Any]:
    """``count`` rows committed first; then the bare claim-and-delete loop drains them."""
    run.sql("TRUNCATE pgoutbox_event")
    for first in range(0, count, 500):
        run.sql(INSERT, {"first": first, "last": min(first + 499, count - 1)})
    run.sql("VACUUM ANALYZE pgoutbox_event")
    process, out = _start(run, "claim", f"db-floor-drain-{time.monotonic_ns()}")
    deadline = time.monotonic() + 120
    while run.sql("SELECT count(*) FROM pgoutbox_event")[0][0] and time.monotonic() < deadline:
        time.sleep(0.05)
    data = _read(process, out)
    deleted = [t for t, seq in data["records"] if seq >= 0]
    seconds = max(deleted) - data["started"] if deleted else None
    return {
        "label": "db-floor-drain",
        "events": count,
        "deleted": len(deleted),
        "drain_seconds": round(seconds, 3) if seconds else None,
        "drain_events_per_s": round(len(deleted) / seconds, 1) if seconds else None,
    }


if __name__ == "__main__":
    main()
