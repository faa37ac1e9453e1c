"""``manage.py event_cleaner``: delete kept 'sent' events older than ``TIME_TO_DELETE``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from pgoutbox.cleanup import delete_sent_events
from pgoutbox.conf import get_settings


class Command(BaseCommand):
    help = "Delete sent outbox events older than TIME_TO_DELETE; never pending or dead ones."

    def handle(self, *args: Any, **options: Any) -> None:
        settings = get_settings()
        deleted = delete_sent_events(settings.time_to_delete, using=settings.database)
        self.stdout.write(f"Successfully deleted {deleted} events")
