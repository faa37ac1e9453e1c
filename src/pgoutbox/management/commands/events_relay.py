"""``manage.py events_relay``: the polling relay, once (cron) or in a loop."""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pgoutbox import metrics
from pgoutbox.conf import get_settings
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
        parser.add_argument(
            "--metrics-port", type=metrics.port_number, help="with --run-in-loop (METRICS_PORT)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        loop = options["run_in_loop"]
        if options["metrics_port"] is not None and not loop:
            # A single run ends before Prometheus scrapes; METRICS_PORT is for looping relays.
            raise CommandError("--metrics-port needs --run-in-loop")
        relays = build_relays(relay_options(options, interval="loop_interval"), listen=False)
        port = options["metrics_port"]
        stop_metrics = (
            metrics.serve_relay_metrics(port, get_settings(), relays[0].alias) if loop else None
        )
        stop = threading.Event()
        # Ctrl-C stops the cron form too (not as a user's call's failure); calls run in this
        # thread, so a second signal ends a hung one.
        stop_on_signals(stop, second_kills=not loop)
        if stop_metrics is not None:
            try:
                run_relays(relays, stop)
            finally:
                stop_metrics()
            return
        for relay in relays:
            delivered = relay.drain_once(stop)
            self.stdout.write(f"relayed {delivered} events")
            if relay.broker_error is not None:
                # Exit non-zero so cron and its monitoring notice; the events stay pending.
                raise CommandError(f"broker unavailable, events left pending: {relay.broker_error}")
