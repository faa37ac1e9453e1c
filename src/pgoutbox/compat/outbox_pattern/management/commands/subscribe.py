"""``django_outbox_pattern.management.commands.subscribe``: pgoutbox's ``subscribe`` command."""

from pgoutbox.management.commands.subscribe import Command

__all__ = ["Command"]
