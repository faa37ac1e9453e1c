"""``manage.py outbox_dlq list|replay|purge <queue>``: the dead letters of a consumer."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pgoutbox.conf import get_settings
from pgoutbox.consumer.dlq import DeadLetterQueue
from pgoutbox.errors import TransportUnavailable


class Command(BaseCommand):
    help = "List, replay (back to the queue) or purge the dead letters in DLQ.<queue>."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("list", "replay", "purge"))
        parser.add_argument("queue", help="the consumer's queue, e.g. orders for /queue/orders")
        parser.add_argument("--limit", type=int, default=100, help="list: at most this many")
        parser.add_argument("--yes", action="store_true", help="purge: yes, delete them all")

    def handle(self, *args: Any, **options: Any) -> None:
        action, name, limit = options["action"], options["queue"], options["limit"]
        if action == "purge" and not options["yes"]:
            raise CommandError(f"purge deletes every dead letter in DLQ.{name} for good: add --yes")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise CommandError(f"--limit must be a positive integer, got {limit!r}")
        try:
            with DeadLetterQueue(name, get_settings(), prefetch=limit) as dlq:
                if action == "list":
                    letters = dlq.browse(limit)
                    self.stdout.write("\n".join(letter.summary() for letter in letters))
                    self.stdout.write(f"{len(letters)} dead letters shown (at most {limit})")
                elif action == "replay":
                    self.stdout.write(f"{dlq.replay()} dead letters replayed from DLQ.{name}")
                else:
                    self.stdout.write(f"{dlq.purge()} dead letters purged from DLQ.{name}")
        except (ValueError, TransportUnavailable) as exc:
            raise CommandError(f"outbox_dlq {action} {name}: {exc}") from exc
