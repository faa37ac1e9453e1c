"""``manage.py outbox_status``: backlog, dead events, trigger, relays and NOTIFY health."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pgoutbox.conf import get_settings
from pgoutbox.status import format_status, read_status


class Command(BaseCommand):
    help = "Show pending and dead outbox events, the trigger, relays and NOTIFY health."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument("--dead", type=int, default=10, help="dead events to list (10)")
        parser.add_argument(
            "--fail-unhealthy",
            action="store_true",
            help="exit 1 on dead events, a trigger not installed and current, no relay connected",
        )
        parser.add_argument("--max-age", type=float, help="unhealthy: oldest pending older (s)")
        parser.add_argument("--without-relay", action="store_true", help="no relay is required")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["max_age"] is not None and not options["max_age"] > 0:
            raise CommandError("--max-age must be a positive number of seconds")
        status = read_status(using=get_settings().database, dead_limit=options["dead"])
        problems = status.problems(
            max_age=options["max_age"], relay_required=not options["without_relay"]
        )
        if options["json"]:
            document = {**status.as_dict(), "problems": problems, "healthy": not problems}
            self.stdout.write(json.dumps(document, indent=2))
        else:
            self.stdout.write(format_status(status, problems))
        if options["fail_unhealthy"] and problems:
            raise CommandError(f"outbox is unhealthy: {'; '.join(problems)}")
