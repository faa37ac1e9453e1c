"""``manage.py outbox_listen``: publish events the moment their transaction commits."""

from __future__ import annotations

import gc
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from pgoutbox import metrics
from pgoutbox.conf import get_settings
from pgoutbox.runner import build_relays, relay_options, run_relays
from pgoutbox.shutdown import stop_on_signals


class Command(BaseCommand):
    help = "Wake on NOTIFY (and every poll interval) and publish committed outbox events."
    requires_system_checks = ()  # run in handle(), with the relay's database

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stream", action="append", default=[], help="only these streams")
        parser.add_argument("--batch-size", type=int, help="events per claim (BATCH_SIZE)")
        parser.add_argument("--poll-interval", type=float, help="seconds (POLL_INTERVAL)")
        parser.add_argument(
            "--database", action="append", default=[], help="alias to serve (repeatable)"
        )
        parser.add_argument(
            "--metrics-port", type=metrics.port_number, help="serve /metrics (METRICS_PORT)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings = get_settings()
        relays = build_relays(relay_options(options), listen=True)
        # Schema errors stop it; warnings are shown. The relays use connections of their own.
        self.check(databases=[relay.alias for relay in relays])
        connections.close_all()
        # What start-up built (Django, the apps, their modules) lives as long as the process:
        # out of the collector's generations, full collections stop walking it again and again.
        gc.freeze()
        # The gauges are those of the first database served (a process serving several
        # reports the first one's backlog; run one listener per database to see each).
        stop_metrics = metrics.serve_relay_metrics(
            options["metrics_port"], settings, relays[0].alias
        )
        stop = threading.Event()
        stop_on_signals(stop)
        try:
            run_relays(relays, stop)
        finally:
            stop_metrics()
