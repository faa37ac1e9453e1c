"""``django_outbox_pattern.management``: see
``pgoutbox.compat.outbox_pattern.management.commands``."""
