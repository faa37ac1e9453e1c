"""``jaiminho.management``: see ``pgoutbox.compat.jaiminho.management.commands``."""
