"""``manage.py outbox_import_legacy outbox-pattern|jaiminho``: take over a replaced library's
pending events and inbox (outbox-pattern), or list what must be drained first (jaiminho)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pgoutbox import legacy
from pgoutbox.conf import get_settings


class Command(BaseCommand):
    help = "Take over django-outbox-pattern's pending events and inbox ids (or list jaiminho's)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("library", choices=["outbox-pattern", "jaiminho"])
        parser.add_argument("--database", help="alias holding both tables (default: DATABASE)")
        parser.add_argument("--consumer", help="the queue copied inbox ids belong to")

    def handle(self, *args: Any, **options: Any) -> None:
        using = options["database"] or get_settings().database
        try:
            if options["library"] == "outbox-pattern":
                imported = legacy.import_outbox_pattern(using=using, consumer=options["consumer"])
                self.stdout.write(imported.describe())
                return
            pending = legacy.pending_jaiminho(using=using)
        except legacy.LegacyImportError as exc:
            raise CommandError(str(exc)) from exc
        for group in pending:
            self.stdout.write(group.describe())
        if pending:
            raise CommandError(legacy.JAIMINHO_DRAIN_ADVICE)
        self.stdout.write("no pending django-jaiminho events: nothing to drain")
