"""``manage.py outbox_status``: backlog, dead events, trigger and NOTIFY health."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pgoutbox.conf import get_settings
from pgoutbox.status import read_status


class Command(BaseCommand):
    help = "Show pending and dead outbox events, the trigger and NOTIFY health."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument("--dead", type=int, default=10, help="dead events to list (10)")
        parser.add_argument(
            "--fail-unhealthy", action="store_true", help="exit 1 on dead events or no trigger"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        status = read_status(using=get_settings().database, dead_limit=options["dead"])
        if options["json"]:
            self.stdout.write(json.dumps(status.as_dict(), indent=2))
        else:
            self.stdout.write(
                f"pending: {status.pending_due} due, {status.pending_later} scheduled later "
                f"(oldest {status.oldest_pending_seconds:.1f}s)\n"
                f"dead: {status.dead}   sent (kept): {status.sent}\n"
                f"trigger: {status.trigger}   NOTIFY mode: {status.notify_mode}   "
                f"NOTIFY queue: {status.notify_queue_usage:.1%}   "
                f"relay sessions: {status.relay_sessions}"
            )
            for event in status.latest_dead:
                self.stdout.write(
                    f"  dead #{event.id} {event.kind} {event.target} "
                    f"(stream {event.stream!r}, {event.attempts} attempts): {event.last_error}"
                )
        if options["fail_unhealthy"] and not status.healthy:
            raise CommandError("outbox is unhealthy: dead events or no working trigger")
