"""``django_outbox_pattern.management.commands.publish``: pgoutbox's ``publish`` command."""

from pgoutbox.management.commands.publish import Command

__all__ = ["Command"]
