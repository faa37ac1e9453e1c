"""``manage.py outbox_requeue``: make dead events pending again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pgoutbox.conf import get_settings
from pgoutbox.status import requeue_dead


class Command(BaseCommand):
    help = "Set dead outbox events back to pending (due now, attempts reset)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="ids of dead events")
        parser.add_argument("--all", action="store_true", help="every dead event")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["ids"] and not options["all"]:
            raise CommandError("name the dead events' ids, or pass --all")
        requeued = requeue_dead(
            options["ids"], all_dead=options["all"], using=get_settings().database
        )
        self.stdout.write(f"requeued {len(requeued)} events: {requeued}")
