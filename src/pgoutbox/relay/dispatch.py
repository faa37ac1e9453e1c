"""Turn claimed rows into broker messages or registered calls, or say why a row can never be
published."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pgoutbox import registry
from pgoutbox.relay.store import EventRow
from pgoutbox.transports.base import Message
from pgoutbox.validation import body_size_error, destination_error, headers_error


def to_message(row: EventRow, *, max_body_bytes: int) -> Message | str:
    """Return the :class:`Message` for a row, or the reason it is invalid (it is dead-lettered)."""
    if row.kind != "message":
        return f"unknown event kind {row.kind!r}; this relay publishes kind 'message'"
    error = (
        destination_error(row.destination)
        or headers_error(row.headers)
        or body_size_error(row.body, max_body_bytes)
    )
    if error is not None:
        return error
    assert row.destination is not None
    return Message(
        event_id=row.id,
        message_id=row.message_id,
        destination=row.destination,
        body=bytes(row.body),
        headers=dict(row.headers),
    )


@dataclass(frozen=True)
class Call:
    """A ``kind = 'call'`` row resolved to a registered function and its JSON arguments."""

    event_id: int
    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class NotRegistered:
    """A call whose function this process did not register (a relay deployed without its
    module): it waits for a relay that has it, never dead-lettered for that."""

    reason: str


def to_call(row: EventRow) -> Call | NotRegistered | str:
    """Return the :class:`Call` for a row, :class:`NotRegistered`, or the reason it can never
    run.

    The function is looked up in this process's registry only: a name nobody registered is
    refused without importing anything it names.
    """
    if row.function is None:
        return "call event without a function"
    function = registry.lookup(row.function)
    if function is None and row.function.startswith(registry.TASK_PREFIX):
        return NotRegistered(
            f"task {row.function.removeprefix(registry.TASK_PREFIX)!r} is not registered in "
            "this relay's process: define it with @task (backend "
            "pgoutbox.tasks.OutboxTaskBackend) in an app's tasks module or a module of "
            "PGOUTBOX['FUNCTION_MODULES']; nothing was imported, it waits for a relay that "
            "has it"
        )
    if function is None:
        return NotRegistered(
            f"function {row.function!r} is not registered in this relay's process: decorate "
            "it with @save_to_outbox and import its module at start-up (an app's outbox "
            "module or PGOUTBOX['FUNCTION_MODULES']); nothing was imported, it waits for a "
            "relay that has it"
        )
    payload = row.args
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("args"), list)
        or not isinstance(payload.get("kwargs"), dict)
    ):
        return 'call arguments must be {"args": [...], "kwargs": {...}}'
    return Call(row.id, function, tuple(payload["args"]), dict(payload["kwargs"]))
