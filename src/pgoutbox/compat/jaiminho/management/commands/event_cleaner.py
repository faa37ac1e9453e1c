"""``jaiminho.management.commands.event_cleaner``: pgoutbox's ``event_cleaner`` command."""

from pgoutbox.management.commands.event_cleaner import Command

__all__ = ["Command"]
