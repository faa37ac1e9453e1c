"""What the NOTIFY trigger costs writers, per mode and client count, and what each mode buys.

pgbench runs one-row ``INSERT INTO pgoutbox_event`` transactions (``-M prepared``) from 1, 4
and 16 clients while ``outbox_listen`` relays them to RabbitMQ. Modes:

- ``none``: the trigger disabled (the ceiling; delivery by polling only);
- ``on``: NOTIFY on every transaction (the default);
- ``off``: poll-only (``pgoutbox.notify = 'off'``);
- ``adaptive``: producers skip NOTIFY while the listener holds its busy lock.

One insert in 100 goes to a probe queue a consumer timestamps; the body is the insert's
``clock_timestamp()``, so latency is insert → consumer (it includes the commit's own wait).
The rest go to a topic nobody subscribes to (RabbitMQ confirms and drops them).
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from typing import Any

from benchmarks.e2e import Listener, start_consumer, start_listener
from benchmarks.infra import PG, ProcessMonitor, Run, percentiles, stop_process

SCRIPT = """\
\\set r random(1, 100)
INSERT INTO pgoutbox_event (destination, body_bytes)
VALUES (CASE WHEN :r = 1 THEN :probe ELSE :sink END,
        convert_to(extract(epoch FROM clock_timestamp())::text, 'UTF8'));
"""
_TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")


def pgbench(run: Run, *, clients: int, seconds: float, probe: str) -> float:
    script = run.tmp / "insert.sql"
    script.write_text(SCRIPT)
    args = [
        "pgbench", "-n", "-h", PG["host"], "-p", str(PG["port"]), "-U", PG["user"],
        "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(int(seconds)), "-M", "prepared",
        "-f", str(script), "-D", f"probe={probe}", "-D", "sink=/topic/pgoutbox-bench-sink",
        run.database,
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = _TPS.search(result.stdout)
    if result.returncode != 0 or not match:
        raise RuntimeError(f"pgbench failed:\n{result.stdout}\n{result.stderr}")
    return float(match.group(1))


def set_mode(run: Run, mode: str) -> None:
    trigger = "DISABLE" if mode == "none" else "ENABLE"
    run.sql(f"ALTER TABLE pgoutbox_event {trigger} TRIGGER USER")
    notify = "on" if mode == "none" else mode
    run.sql(f"ALTER DATABASE \"{run.database}\" SET pgoutbox.notify = '{notify}'")


def one_run(run: Run, *, mode: str, clients: int, seconds: float) -> dict[str, Any]:
    label = f"{mode}-{clients}-{len(run.queues)}"
    set_mode(run, mode)
    probe = run.queue()
    consumer = start_consumer(run, probe, 0, f"{label}-consumer", timeout=seconds + 120)
    listener_log = f"{label}-listener.log"
    listener = start_listener(run, Listener(poll_interval=1.0, persistent=False), listener_log)
    run.wait_for_log(listener_log, "relay connected", listener, timeout=60)
    with ProcessMonitor(listener.pid) as monitor:
        cpu_before = monitor.cpu_seconds()
        tps = pgbench(run, clients=clients, seconds=seconds, probe=probe)
        ended = time.monotonic()
        [(left,)] = run.sql("SELECT count(*) FROM pgoutbox_event")
        remaining = left
        while remaining and time.monotonic() < ended + 60:
            time.sleep(0.05)
            [(remaining,)] = run.sql("SELECT count(*) FROM pgoutbox_event")
        caught_up = time.monotonic() - ended
        cpu = monitor.cpu_seconds() - cpu_before
    time.sleep(0.5)
    stop_process(consumer)
    stop_process(listener)
    lines = (run.tmp / f"{label}-consumer.tsv").read_text().splitlines()
    latencies = [
        (float(t) - float(body)) * 1000 for t, body in (line.split("\t", 1) for line in lines)
    ]
    run.sql("TRUNCATE pgoutbox_event")
    return {
        "mode": mode,
        "clients": clients,
        "commits_per_s": round(tps, 1),
        "latencies_ms": latencies,
        "rows_pending_when_pgbench_ended": left,
        "seconds_to_catch_up_after": round(caught_up, 2),
        "listener_cpu_s": round(cpu, 2),
    }


def run_write_overhead(
    run: Run, *, clients: list[int], modes: list[str], seconds: float, rounds: int
) -> dict[str, Any]:
    """Every (mode, clients) pair ``rounds`` times, modes interleaved so that a noisy
    neighbour hurts them alike; commits/s is the median of the rounds."""
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for _ in range(rounds):
        for count in clients:
            for mode in modes:
                one = one_run(run, mode=mode, clients=count, seconds=seconds)
                print({k: v for k, v in one.items() if k != "latencies_ms"}, flush=True)
                runs.setdefault((mode, count), []).append(one)
    set_mode(run, "on")
    results = []
    for (mode, count), samples in runs.items():
        latencies = [v for one in samples for v in one["latencies_ms"]]
        results.append({
            "mode": mode,
            "clients": count,
            "commits_per_s": statistics.median(one["commits_per_s"] for one in samples),
            "commits_per_s_rounds": [one["commits_per_s"] for one in samples],
            "probe_events": len(latencies),
            **percentiles(latencies),
            "rows_pending_when_pgbench_ended": [
                one["rows_pending_when_pgbench_ended"] for one in samples
            ],
            "seconds_to_catch_up_after": [one["seconds_to_catch_up_after"] for one in samples],
            "listener_cpu_s": [one["listener_cpu_s"] for one in samples],
        })  # fmt: skip
    table: dict[str, dict[int, float]] = {}
    for r in results:
        table.setdefault(r["mode"], {})[r["clients"]] = r["commits_per_s"]
    relative = {
        mode: {c: round(v / table["none"][c], 3) for c, v in row.items()}
        for mode, row in table.items()
        if "none" in table
    }
    out: dict[str, Any] = {
        "settings": {
            "seconds_per_run": seconds,
            "rounds": rounds,
            "listener_poll_interval_s": 1.0,
            "adaptive_poll_interval_s": 0.005,
            "stomp_persistent": False,
            "probe_share": 0.01,
            "pgbench": "-M prepared, -j min(clients, 2), one-row INSERT per transaction",
        },
        "results": results,
        "commits_per_s": table,
        "relative_to_no_trigger": relative,
    }
    top = max(clients)
    adaptive = next((r for r in results if r["mode"] == "adaptive" and r["clients"] == top), None)
    if adaptive and top in relative.get("adaptive", {}):
        from benchmarks.__main__ import targets

        out["targets"] = targets(
            {
                f"adaptive / no-trigger commits/s at {top} clients": (
                    relative["adaptive"][top],
                    ">=",
                    0.70,
                ),
                f"adaptive p99 delivery ms at {top} clients": (adaptive["p99_ms"], "<=", 50.0),
            }
        )
    return out
