"""What an operator needs to see: backlog, dead events, the trigger, NOTIFY health."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import connections

from pgoutbox.schema import inspect_schema
from pgoutbox.sql import query


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
    """A snapshot of the outbox; ``healthy`` is False when an operator should look.

    ``trigger``: installed, outdated (``outdated`` says why), disabled, replica only, missing.
    """

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
    outdated: list[str]
    # Django tasks' results per status (pgoutbox.tasks); a FAILED task is also a dead event.
    tasks: dict[str, int] = field(default_factory=dict)

    def problems(self, *, max_age: float | None = None, relay_required: bool = True) -> list[str]:
        """What makes the outbox unhealthy: dead events, a trigger that is not installed and
        current, no relay session connected (unless ``relay_required`` is False, e.g. a relay
        run by cron), the oldest pending event older than ``max_age`` seconds."""
        found = []
        if self.dead:
            found.append(f"{self.dead} dead events")
        if self.trigger != "installed":
            found.append(f"trigger {self.trigger}")
        if relay_required and self.relay_sessions == 0:
            found.append("no relay connected")
        if max_age is not None and self.oldest_pending_seconds > max_age:
            found.append(
                f"oldest pending event is {self.oldest_pending_seconds:.1f}s old (max {max_age:g}s)"
            )
        return found

    @property
    def healthy(self) -> bool:
        return not self.problems()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy, "problems": self.problems()}


def read_status(*, using: str, dead_limit: int = 10) -> OutboxStatus:
    """Read the outbox's status in one short read-only round of queries."""
    with connections[using].cursor() as cursor:
        cursor.execute(query("status_counts"))
        due, later, dead, sent, oldest = cursor.fetchone()
        cursor.execute(query("status_database"))
        mode, usage, sessions = cursor.fetchone()
        schema = inspect_schema(cursor)
        cursor.execute(query("status_dead"), {"limit": dead_limit})
        latest = [DeadEvent(*row) for row in cursor.fetchall()]
        cursor.execute(query("task_status_counts"))
        tasks = dict(cursor.fetchall())
    return OutboxStatus(
        pending_due=due,
        pending_later=later,
        dead=dead,
        sent=sent,
        oldest_pending_seconds=round(float(oldest), 3),
        trigger=schema.trigger,
        notify_mode=mode,
        notify_queue_usage=float(usage),
        relay_sessions=sessions,
        latest_dead=latest,
        outdated=schema.outdated,
        tasks=tasks,
    )


def format_status(status: OutboxStatus, problems: Sequence[str]) -> str:
    """The human-readable report of ``outbox_status``."""
    lines = [
        f"pending: {status.pending_due} due, {status.pending_later} scheduled later "
        f"(oldest {status.oldest_pending_seconds:.1f}s)",
        f"dead: {status.dead}   sent (kept): {status.sent}",
        f"trigger: {status.trigger}   NOTIFY mode: {status.notify_mode}   "
        f"NOTIFY queue: {status.notify_queue_usage:.1%}   "
        f"relay sessions: {status.relay_sessions}",
        *(f"  outdated: {reason}" for reason in status.outdated),
        *(
            f"  dead #{event.id} {event.kind} {event.target} "
            f"(stream {event.stream!r}, {event.attempts} attempts): {event.last_error}"
            for event in status.latest_dead
        ),
        f"health: {'; '.join(problems) if problems else 'ok'}",
    ]
    if status.tasks:
        counts = "   ".join(f"{name} {count}" for name, count in status.tasks.items())
        lines.insert(2, f"tasks: {counts}")
    return "\n".join(lines)


def requeue_dead(ids: Sequence[int], *, all_dead: bool, using: str) -> list[int]:
    """Make dead events pending again (due now, attempts reset); return their ids."""
    with connections[using].cursor() as cursor:
        cursor.execute(query("requeue_dead"), {"all": all_dead, "ids": list(ids)})
        return sorted(row[0] for row in cursor.fetchall())
