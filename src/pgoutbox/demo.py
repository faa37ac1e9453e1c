"""``python -m pgoutbox.demo``: push delivery on an embedded PostgreSQL, no services needed.

Starts PostgreSQL from the ``pgserver`` package in a temporary directory, migrates, runs the
listener in-process with the in-memory transport, commits a few hundred ``send()`` calls and
rolls some back, then reports what was delivered and the commit→publish latency. Leaves
nothing running. Exit status 0 only if every committed event arrived and no rolled-back one.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse


def _configure_django(uri: str) -> None:
    import django
    from django.conf import settings

    parsed = urlparse(uri)
    host = parse_qs(parsed.query).get("host", [parsed.hostname or "localhost"])[0]
    settings.configure(
        INSTALLED_APPS=["pgoutbox"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": parsed.path.lstrip("/") or "postgres",
                "USER": parsed.username or "postgres",
                "HOST": host,
                "PORT": str(parsed.port or ""),
            }
        },
        PGOUTBOX={"TRANSPORT": "pgoutbox.transports.memory.MemoryTransport", "POLL_INTERVAL": 5.0},
        USE_TZ=True,
    )
    django.setup()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(events: int, rollbacks: int) -> int:
    from django.core.management import call_command
    from django.db import connections, transaction

    import pgoutbox
    from pgoutbox.runner import build_relay
    from pgoutbox.transports.memory import MemoryTransport

    call_command("migrate", verbosity=0)
    transport = MemoryTransport()
    relay = build_relay(listen=True, transport=transport)
    stop = threading.Event()
    worker = threading.Thread(target=relay.run, args=(stop,), name="outbox_listen")
    worker.start()
    try:
        time.sleep(0.2)  # let the listener LISTEN and drain before the first commit
        committed: dict[str, float] = {}
        rolled_back: set[str] = set()
        plan = [True] * events + [False] * rollbacks
        random.Random(0).shuffle(plan)
        for n, keep in enumerate(plan):
            try:
                with transaction.atomic():
                    message_id = str(pgoutbox.send("/queue/demo", {"n": n, "kept": keep}))
                    if not keep:
                        raise _Rollback
                committed[message_id] = time.time()
            except _Rollback:
                rolled_back.add(message_id)
            time.sleep(0.002)  # a steady producer, not a bulk load
        transport.wait_for(len(committed), timeout=30)
        time.sleep(0.2)  # anything extra (a rolled-back event) would show up now
    finally:
        stop.set()
        worker.join()
        connections.close_all()

    delivered = {str(d.message.message_id): d.received_at for d in transport.deliveries}
    latencies = [(delivered[m] - t) * 1000 for m, t in committed.items() if m in delivered]
    missing = len(committed) - len(latencies)
    leaked = len(rolled_back & delivered.keys())
    print(f"committed {len(committed)} events, rolled back {len(rolled_back)}")
    print(f"delivered {len(delivered)}: {len(latencies)} committed, {leaked} rolled back")
    print(f"missing {missing}, duplicated {len(transport.deliveries) - len(delivered)}")
    if latencies:
        print(
            f"commit -> publish latency: p50 {statistics.median(latencies):.2f} ms, "
            f"p99 {_percentile(latencies, 0.99):.2f} ms, max {max(latencies):.2f} ms"
        )
    ok = missing == 0 and leaked == 0 and len(transport.deliveries) == len(delivered)
    print("OK: every committed event delivered, no rolled-back one" if ok else "FAILED")
    return 0 if ok else 1


class _Rollback(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pgoutbox.demo", description=__doc__)
    parser.add_argument("--events", type=int, default=300, help="committed events (300)")
    parser.add_argument("--rollbacks", type=int, default=30, help="rolled-back events (30)")
    args = parser.parse_args(argv)
    # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
    try:
        import pgserver
    except ImportError:
        print("the demo needs the embedded PostgreSQL: pip install 'pgoutbox[embedded]'")
        return 2
    with tempfile.TemporaryDirectory(prefix="pgoutbox-demo-") as tmp:
        started = time.monotonic()
        server = pgserver.get_server(  # type: ignore[attr-defined]
            Path(tmp) / "pgdata", cleanup_mode="stop"
        )
        print(f"embedded PostgreSQL started in {time.monotonic() - started:.1f}s")
        try:
            _configure_django(server.get_uri())
            return run(args.events, args.rollbacks)
        finally:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
