"""``manage.py publish``: django-outbox-pattern's name for ``outbox_listen``."""

from __future__ import annotations

from pgoutbox.management.commands.outbox_listen import Command as ListenCommand


class Command(ListenCommand):
    help = "Alias of outbox_listen, for deployments coming from django-outbox-pattern."
