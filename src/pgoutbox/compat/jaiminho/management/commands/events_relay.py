"""``jaiminho.management.commands.events_relay``: pgoutbox's ``events_relay`` command."""

from pgoutbox.management.commands.events_relay import Command

__all__ = ["Command"]
