"""``manage.py events_relay``: the polling relay, once (cron) or in a loop."""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pgoutbox.runner import build_relays, relay_options, run_relays
from pgoutbox.shutdown import stop_on_signals


class Command(BaseCommand):
    help = "Publish pending outbox events of all streams (or some) by polling, without LISTEN."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--run-in-loop", action="store_true", help="keep polling")
        parser.add_argument("--loop-interval", type=float, help="seconds between polls")
        parser.add_argument("--stream", action="append", default=[], help="only this stream")
        parser.add_argument("--batch-size", type=int, help="events per claim (BATCH_SIZE)")
        parser.add_argument("--database", action="append", default=[], help="alias to serve")

    def handle(self, *args: Any, **options: Any) -> None:
        relays = build_relays(relay_options(options, interval="loop_interval"), listen=False)
        if options["run_in_loop"]:
            stop = threading.Event()
            stop_on_signals(stop)
            run_relays(relays, stop)
            return
        for relay in relays:
            delivered = relay.drain_once()
            self.stdout.write(f"relayed {delivered} events")
            if relay.broker_error is not None:
                # Exit non-zero so cron and its monitoring notice; the events stay pending.
                raise CommandError(f"broker unavailable, events left pending: {relay.broker_error}")
