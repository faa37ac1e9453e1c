"""What an operator needs to see: backlog, dead events, the trigger, NOTIFY health."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.db import connections

from pgoutbox.sql import query

# pg_trigger.tgenabled: 'O' fires (origin), 'A' always, 'R' on replicas only, 'D' disabled.
_TRIGGER_STATES = {"O": "installed", "A": "installed", "R": "replica only", "D": "disabled"}


@dataclass(frozen=True)
class DeadEvent:
    id: int
    stream: str
    kind: str
    target: str | None
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class OutboxStatus:
    """A snapshot of the outbox; ``healthy`` is False when an operator should look."""

    pending_due: int
    pending_later: int
    dead: int
    sent: int
    oldest_pending_seconds: float
    trigger: str
    notify_mode: str
    notify_queue_usage: float
    relay_sessions: int
    latest_dead: list[DeadEvent]

    @property
    def healthy(self) -> bool:
        return self.dead == 0 and self.trigger == "installed"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


def read_status(*, using: str, dead_limit: int = 10) -> OutboxStatus:
    """Read the outbox's status in one short read-only round of queries."""
    with connections[using].cursor() as cursor:
        cursor.execute(query("status_counts"))
        due, later, dead, sent, oldest = cursor.fetchone()
        cursor.execute(query("status_database"))
        trigger, mode, usage, sessions = cursor.fetchone()
        cursor.execute(query("status_dead"), {"limit": dead_limit})
        latest = [DeadEvent(*row) for row in cursor.fetchall()]
    return OutboxStatus(
        pending_due=due,
        pending_later=later,
        dead=dead,
        sent=sent,
        oldest_pending_seconds=round(float(oldest), 3),
        trigger=_TRIGGER_STATES.get(trigger, "missing") if trigger else "missing",
        notify_mode=mode,
        notify_queue_usage=float(usage),
        relay_sessions=sessions,
        latest_dead=latest,
    )


def requeue_dead(ids: Sequence[int], *, all_dead: bool, using: str) -> list[int]:
    """Make dead events pending again (due now, attempts reset); return their ids."""
    with connections[using].cursor() as cursor:
        cursor.execute(query("requeue_dead"), {"all": all_dead, "ids": list(ids)})
        return sorted(row[0] for row in cursor.fetchall())
