"""``manage.py event_cleaner``: delete kept 'sent' events older than ``TIME_TO_DELETE``,
consumer inbox rows older than ``DAYS_TO_KEEP_DATA`` days, and finished task results older
than ``TASK_RESULT_RETENTION``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from pgoutbox.cleanup import delete_received_messages, delete_sent_events, delete_task_results
from pgoutbox.conf import get_settings
from pgoutbox.runner import relay_options


class Command(BaseCommand):
    help = (
        "Delete sent outbox events older than TIME_TO_DELETE (never pending or dead ones) and "
        "inbox rows older than DAYS_TO_KEEP_DATA days, and finished task results older than "
        "TASK_RESULT_RETENTION."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", action="append", default=[], help="alias to clean")

    def handle(self, *args: Any, **options: Any) -> None:
        settings = get_settings()
        for alias in relay_options(options).databases:
            using = alias or settings.database
            deleted = delete_sent_events(settings.time_to_delete, using=using)
            self.stdout.write(f"Successfully deleted {deleted} events")
            received = delete_received_messages(settings.days_to_keep_data, using=using)
            self.stdout.write(f"Successfully deleted {received} inbox rows")
            results = delete_task_results(settings.task_result_retention, using=using)
            self.stdout.write(f"Successfully deleted {results} task results")
