"""``manage.py outbox_listen``: publish events the moment their transaction commits."""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from pgoutbox.runner import build_relays, relay_options, run_relays
from pgoutbox.shutdown import stop_on_signals


class Command(BaseCommand):
    help = "Wake on NOTIFY (and every poll interval) and publish committed outbox events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stream", action="append", default=[], help="only these streams")
        parser.add_argument("--batch-size", type=int, help="events per claim (BATCH_SIZE)")
        parser.add_argument("--poll-interval", type=float, help="seconds (POLL_INTERVAL)")
        parser.add_argument(
            "--database", action="append", default=[], help="alias to serve (repeatable)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        relays = build_relays(relay_options(options), listen=True)
        stop = threading.Event()
        stop_on_signals(stop)
        run_relays(relays, stop)
