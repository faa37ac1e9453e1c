"""Database routers as deployments have them: outbox rows go where the router says."""

from __future__ import annotations

from typing import Any

from pgoutbox.models import OutboxEvent


class OutboxOnDirect:
    """Writes of outbox events go to the "direct" alias; everything else is left to Django."""

    alias = "direct"

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        return self.alias if model is OutboxEvent else None


class OutboxOnBouncer(OutboxOnDirect):
    """Writes of outbox events go through PgBouncer ("bouncer")."""

    alias = "bouncer"
