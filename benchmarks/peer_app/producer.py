"""A peer's producer: ``--peer jaiminho`` calls the ``@save_to_outbox`` function of
:mod:`benchmarks.peer_app.events` in a transaction, ``--peer outbox-pattern`` creates a
``Published`` row (django-outbox-pattern's README: custom logic before the outbox table). One
event per transaction at ``--rate``; the stamp is the last moment inside the transaction.
Writes the same JSON as :mod:`benchmarks.producer`."""

from __future__ import annotations

import argparse
import time

from benchmarks.receipts import write_produced


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peer", choices=["jaiminho", "outbox-pattern"], required=True)
    parser.add_argument("--destination", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="transactions/s; 0 = flat out")
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.db import transaction

    if args.peer == "jaiminho":
        from benchmarks.peer_app.events import publish

        def send(body: dict[str, int]) -> None:
            publish(args.destination, body)
    else:
        from django_outbox_pattern.models import Published

        def send(body: dict[str, int]) -> None:
            Published.objects.create(destination=args.destination, body=body)

    for n in range(args.warmup):
        with transaction.atomic():
            send({"warmup": n})
        time.sleep(0.01)
    if args.warmup:
        time.sleep(1.0)

    commits: list[float] = []
    started = time.time()
    origin = time.monotonic()
    for seq in range(args.count):
        if args.rate:
            delay = origin + seq / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        with transaction.atomic():
            send({"seq": seq})
            commits.append(time.time())
    finished = time.time()
    write_produced(
        args.out, per_tx=1, count=args.count, started=started, finished=finished, commits=commits
    )


if __name__ == "__main__":
    main()
