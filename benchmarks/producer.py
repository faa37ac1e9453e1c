"""Producer process: Django transactions that write a business row and their events.

``python -m benchmarks.producer --destination D --count N [--rate R] [--per-tx K] --out FILE``.
Each transaction creates one ``tests.app.models.Order`` (unless ``--no-business-row``) and
``K`` events ``pgoutbox.send(D, {"seq": n})``; ``--rate`` paces transactions per second (0: flat
out). ``--warmup W`` first sends W events marked ``warmup`` (they open the listener's broker
connection) and pauses. ``--notify`` sets ``pgoutbox.notify`` for the session. Writes JSON:
the commit time of every transaction (``time.time()`` right after COMMIT returned; with
``--stamp-inside`` the last moment inside the transaction, before COMMIT, as ``benchmarks
floor`` stamps every producer, pgoutbox's and its peers': a peer that publishes on commit has
sent before COMMIT returns).
"""

from __future__ import annotations

import argparse
import time

from benchmarks.receipts import write_produced


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--destination", required=True)
    parser.add_argument("--count", type=int, required=True, help="events (not transactions)")
    parser.add_argument("--rate", type=float, default=0.0, help="transactions/s; 0 = flat out")
    parser.add_argument("--per-tx", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--notify", choices=["on", "off", "adaptive"])
    parser.add_argument("--no-business-row", action="store_true")
    parser.add_argument("--stamp-inside", action="store_true", help="stamp before COMMIT")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.db import connection, transaction

    import pgoutbox
    from tests.app.models import Order

    if args.notify:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('pgoutbox.notify', %s, false)", [args.notify])

    for n in range(args.warmup):
        pgoutbox.send(args.destination, {"warmup": n})
        time.sleep(0.01)
    if args.warmup:
        time.sleep(1.0)

    transactions = -(-args.count // args.per_tx)
    commits: list[float] = []
    seq = 0
    started = time.time()
    origin = time.monotonic()
    for tx in range(transactions):
        if args.rate:
            delay = origin + tx / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        with transaction.atomic():
            if not args.no_business_row:
                Order.objects.create(reference=f"bench-{tx}")
            for _ in range(min(args.per_tx, args.count - seq)):
                pgoutbox.send(args.destination, {"seq": seq})
                seq += 1
            if args.stamp_inside:
                commits.append(time.time())
        if not args.stamp_inside:
            commits.append(time.time())
    finished = time.time()
    write_produced(
        args.out,
        per_tx=args.per_tx,
        count=seq,
        started=started,
        finished=finished,
        commits=commits,
    )


if __name__ == "__main__":
    main()
