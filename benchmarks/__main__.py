"""``python -m benchmarks <command>``: floor, latency, e2e, baseline, transports,
write_overhead, claim_cost, subscribe, admin, tracing, tasks, plot."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from typing import Any

from benchmarks.infra import Run, _raise_interrupt, machine, write_results


def targets(checks: dict[str, tuple[float | None, str, float]]) -> dict[str, Any]:
    """{name: (measured, "<=" | ">=", target)} → {name: {measured, target, met}}."""
    out = {}
    for name, (value, op, target) in checks.items():
        met = value is not None and (value <= target if op == "<=" else value >= target)
        out[name] = {"measured": value, "target": f"{op} {target:g}", "met": met}
    return out


def cmd_floor(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.floor import run_floor

    with Run("floor") as run:
        out = run_floor(
            run,
            count=args.count,
            backlog=args.backlog_count,
            reps=args.reps,
            rate=args.rate,
            peers=not args.no_peers,
            adaptive_seconds=args.adaptive_seconds,
        )
    return {**out, "targets": targets(out.pop("checks"))}


def cmd_latency(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.e2e import Listener, live_run

    with Run("latency") as run:
        result = live_run(
            run,
            label="latency",
            count=args.count,
            rate=args.rate,
            listener=Listener(persistent=not args.transient),
            business_row=False,
        )
    summary = {
        k: result[k]
        for k in (
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms",
            "events_per_s_end_to_end",
            "delivered",
            "lost",
            "duplicated",
        )
    }
    print(json.dumps(summary, indent=2))
    return {
        "results": [result],
        "targets": targets(
            {
                "p50_ms at 200/s with receipts": (result["p50_ms"], "<=", 2.0),
                "p99_ms at 200/s with receipts": (result["p99_ms"], "<=", 10.0),
                "lost": (result["lost"], "<=", 0),
            }
        ),
    }


def cmd_e2e(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.e2e import Listener, backlog_run, idle_run, live_run

    modes = args.mode or ["steady", "burst", "backlog", "idle"]
    variants = [not args.transient] if args.mode else [True, False]
    results: list[dict[str, Any]] = []
    with Run("e2e") as run:
        for mode in modes:
            for persistent in variants if mode == "backlog" else [not args.transient]:
                tag = "persistent" if persistent else "transient"
                listener = Listener(persistent=persistent)
                if mode == "steady":
                    result = live_run(
                        run,
                        label=f"steady-{tag}",
                        count=args.steady_count,
                        rate=args.rate,
                        listener=listener,
                    )
                elif mode == "burst":
                    result = live_run(
                        run, label=f"burst-{tag}", count=args.burst_count, rate=0, listener=listener
                    )
                elif mode == "backlog":
                    result = backlog_run(
                        run, label=f"backlog-{tag}", count=args.backlog_count, listener=listener
                    )
                else:
                    result = idle_run(run, seconds=args.idle_seconds)
                print(
                    json.dumps(
                        {k: v for k, v in result.items() if k not in ("cdf_ms", "progress")}
                    ),
                    flush=True,
                )
                results.append(result)
    by_label = {r["label"]: r for r in results}
    checks: dict[str, tuple[float | None, str, float]] = {}
    for label, r in by_label.items():
        if label.startswith("backlog"):
            floor = 8000.0 if label.endswith("persistent") else 10000.0
            checks[f"{label} drain events/s"] = (r["drain_events_per_s"], ">=", floor)
            checks[f"{label} listener CPU s per 1000 events"] = (
                r["listener_cpu_s_per_1000_events"],
                "<=",
                0.2,
            )
            if r["events"] >= 100_000:
                checks[f"{label} RSS growth MB over {r['events']} events"] = (
                    r["listener_rss_growth_mb"],
                    "<=",
                    10.0,
                )
        if label.startswith(("steady", "burst", "backlog")):
            checks[f"{label} lost"] = (r["lost"], "<=", 0)
    return {"modes": modes, "results": results, "targets": targets(checks)}


def cmd_baseline(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.e2e import Listener, live_run

    results = []
    with Run("baseline") as run:
        for label, notify, interval in (
            ("push (NOTIFY)", None, 1.0),
            ("poll-only 1s", "off", 1.0),
            ("poll-only 0.1s", "off", 0.1),
        ):
            result = live_run(
                run,
                label=label.replace(" ", "_").replace("(", "").replace(")", ""),
                count=args.count,
                rate=args.rate,
                notify=notify,
                listener=Listener(poll_interval=interval),
            )
            result["label"] = label
            print(json.dumps({k: v for k, v in result.items() if k != "cdf_ms"}), flush=True)
            results.append(result)
    return {"results": results}


def cmd_transports(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.transports import run_transports

    with Run("transports") as run:
        return run_transports(
            run,
            transports=args.transports,
            count=args.count,
            rate=args.rate,
            backlog_count=args.backlog_count,
        )


def cmd_write_overhead(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.write_overhead import run_write_overhead

    with Run("write") as run:
        return run_write_overhead(
            run, clients=args.clients, modes=args.modes, seconds=args.duration, rounds=args.rounds
        )


def cmd_claim_cost(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.claim_cost import run_claim_cost

    with Run("claim") as run:
        return run_claim_cost(run, blocked=args.blocked, repeats=args.repeats)


def cmd_subscribe(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.subscribe import run_subscribe

    with Run("subscribe") as run:
        return run_subscribe(run, count=args.count)


def cmd_admin(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.admin import run_admin

    with Run("admin") as run:
        result = run_admin(run, rows=args.rows, repeats=args.repeats)
    return {
        **result,
        "targets": targets(
            {
                f"admin median ms of the slowest view, {args.rows} rows": (
                    max(r["median_ms"] for r in result["results"]),
                    "<=",
                    300.0,
                )
            }
        ),
    }


def cmd_tracing(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.tracing import run_tracing

    return run_tracing(batch=args.batch, repeats=args.repeats)


def cmd_tasks(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.django_tasks import run_tasks

    result = run_tasks(args.count, args.rate, args.backlog_count)
    print(json.dumps(result, indent=2))
    ours, ratios = result["latency"][0], result["ratios"]
    return {
        **result,
        "targets": targets(
            {
                "p50_ms enqueue → start at 200/s": (ours["p50_ms"], "<=", 5.0),
                "start p50 ratio vs db_worker (1 s poll)": (
                    ratios["start_p50_theirs_over_ours"],
                    ">=",
                    50.0,
                ),
                "drain ratio vs db_worker": (ratios["drain_ours_over_theirs"], ">=", 5.0),
            }
        ),
    }


def cmd_plot(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.plot import plot_latest

    for path in plot_latest(args.command_key):
        print(path)
    return {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--max-seconds", type=int, default=1800, help="abort (and clean up) after this"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "floor", help="pgoutbox beside the broker's and the database's floors and the peers"
    )
    p.add_argument("--count", type=int, default=2000, help="steady runs: events")
    p.add_argument("--backlog-count", type=int, default=10000, help="drains: events")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--rate", type=float, default=200.0, help="steady: transactions per second")
    p.add_argument("--no-peers", action="store_true", help="skip jaiminho and outbox-pattern")
    p.add_argument(
        "--adaptive-seconds",
        type=float,
        default=0.0,
        help="also pgbench 16 clients, no trigger vs adaptive, this long each (0: skip)",
    )
    p.set_defaults(func=cmd_floor)

    p = sub.add_parser("latency", help="commit → consumer latency at a steady rate (receipts on)")
    p.add_argument("--count", type=int, default=3000)
    p.add_argument("--rate", type=float, default=200.0, help="events per second")
    p.add_argument("--transient", action="store_true", help="non-persistent STOMP messages")
    p.set_defaults(func=cmd_latency)

    p = sub.add_parser("e2e", help="producer → outbox_listen → RabbitMQ → consumer, per mode")
    p.add_argument(
        "--mode",
        action="append",
        choices=["steady", "burst", "backlog", "idle"],
        help="repeatable; default: all (backlog both persistent and transient)",
    )
    p.add_argument("--transient", action="store_true", help="non-persistent STOMP messages")
    p.add_argument("--rate", type=float, default=200.0, help="steady: transactions per second")
    p.add_argument("--steady-count", type=int, default=4000)
    p.add_argument("--burst-count", type=int, default=10000)
    p.add_argument("--backlog-count", type=int, default=30000)
    p.add_argument("--idle-seconds", type=float, default=30.0)
    p.set_defaults(func=cmd_e2e)

    p = sub.add_parser("baseline", help="steady run: push vs poll-only at 1 s and 0.1 s")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--rate", type=float, default=200.0)
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser(
        "transports", help="latency and backlog drain per transport, each with its broker's floor"
    )
    p.add_argument(
        "--transports",
        nargs="+",
        default=["stomp", "amqp", "jetstream"],
        choices=["stomp", "amqp", "jetstream"],
    )
    p.add_argument("--count", type=int, default=2000, help="latency: events")
    p.add_argument("--rate", type=float, default=200.0, help="latency: events per second")
    p.add_argument("--backlog-count", type=int, default=20000)
    p.set_defaults(func=cmd_transports)

    p = sub.add_parser("write_overhead", help="pgbench commits/s per NOTIFY mode and client count")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument(
        "--modes",
        nargs="+",
        default=["none", "on", "off", "adaptive"],
        choices=["none", "on", "off", "adaptive"],
    )
    p.add_argument("--duration", type=float, default=8.0, help="seconds per pgbench run")
    p.add_argument("--rounds", type=int, default=2, help="repeat every pair; median commits/s")
    p.set_defaults(func=cmd_write_overhead)

    p = sub.add_parser("claim_cost", help="keep-order claim cost against blocked rows")
    p.add_argument("--blocked", type=int, nargs="+", default=[1, 20_000, 200_000])
    p.add_argument("--repeats", type=int, default=30)
    p.set_defaults(func=cmd_claim_cost)

    p = sub.add_parser("subscribe", help="messages/s through manage.py subscribe, prefetch 1/50")
    p.add_argument("--count", type=int, default=500, help="messages per variant")
    p.set_defaults(func=cmd_subscribe)

    p = sub.add_parser("admin", help="admin changelist timings on a 1,000,000-row outbox")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=10, help="timed requests per view")
    p.set_defaults(func=cmd_admin)

    p = sub.add_parser("tracing", help="what OpenTelemetry costs a relay's batch and a producer")
    p.add_argument("--batch", type=int, default=500, help="messages per batch")
    p.add_argument("--repeats", type=int, default=200, help="timed batches per state")
    p.set_defaults(func=cmd_tracing)

    p = sub.add_parser(
        "tasks", help="Django Tasks: pgoutbox's backend vs django-tasks-db's db_worker"
    )
    p.add_argument("--count", type=int, default=2000, help="steady: tasks, one per transaction")
    p.add_argument("--rate", type=float, default=200.0, help="steady: tasks per second")
    p.add_argument("--backlog-count", type=int, default=10000)
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("plot", help="redraw the PNGs from the latest JSON results")
    p.add_argument("command_key", nargs="?", help="e.g. e2e; default: every result")
    p.set_defaults(func=cmd_plot)

    args = parser.parse_args(argv)
    signal.signal(signal.SIGALRM, _raise_interrupt)
    signal.alarm(args.max_seconds)
    func: Callable[[argparse.Namespace], dict[str, Any]] = args.func
    try:
        payload = func(args)
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc}); processes and scratch database cleaned up", file=sys.stderr)
        raise SystemExit(130) from None
    if args.command == "plot":
        return
    key = args.command
    if args.command == "e2e" and args.mode:
        key = "e2e-" + "-".join(args.mode) + ("-transient" if args.transient else "")
    payload = {"machine": machine(), "argv": sys.argv[1:], **payload}
    path = write_results(key, payload)
    print(f"results: {path}", file=sys.stderr)
    # figures only, nothing to draw
    if args.command not in ("claim_cost", "subscribe", "admin", "tracing", "floor", "tasks"):
        from benchmarks.plot import plot_file

        print(f"plot: {plot_file(path)}", file=sys.stderr)
    for name, check in payload.get("targets", {}).items():
        verdict = "MET   " if check["met"] else "MISSED"
        print(f"{verdict} {name}: {check['measured']} (target {check['target']})", file=sys.stderr)


if __name__ == "__main__":
    main()
