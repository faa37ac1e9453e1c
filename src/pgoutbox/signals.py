"""django-jaiminho's signals, same names and kwargs: ``sender`` and ``event_payload``.

``sender`` is the decorated (original) function, or None when the relay does not know it;
``event_payload`` is the call's first positional argument, or ``{}`` without one (as
jaiminho's ``get_event_payload``), after the JSON round trip every call goes through.

Unlike jaiminho they are sent only once the outcome they report is committed, and with
``send_robust``: a receiver that raises is logged and can neither undo a publish nor stop the
relay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger(__name__)

# The producer's on-commit hook (publish-on-commit) ran the function...
event_published = Signal()  # ...and it returned; the row is deleted or marked sent
event_failed_to_publish = Signal()  # ...and it raised; the relay retries it after a backoff
event_permanently_failed = Signal()  # ...and it raised for the last time; the row is dead

# The relay (outbox_listen / events_relay) ran the function...
event_published_by_events_relay = Signal()
event_failed_to_publish_by_events_relay = Signal()
event_permanently_failed_by_events_relay = Signal()  # dead: last attempt, or invalid


def signal_for(outcome: str, *, by_relay: bool) -> Signal:
    """The signal of a call's outcome (``done``, ``failed``, ``dead``), as the producer's
    on-commit hook or a relay reports it."""
    if by_relay:
        return {
            "done": event_published_by_events_relay,
            "failed": event_failed_to_publish_by_events_relay,
            "dead": event_permanently_failed_by_events_relay,
        }[outcome]
    return {
        "done": event_published,
        "failed": event_failed_to_publish,
        "dead": event_permanently_failed,
    }[outcome]


def get_event_payload(args: Any) -> Any:
    """Return ``args[0]`` for a non-empty tuple of positional arguments, else ``{}``."""
    if isinstance(args, tuple) and args:
        return args[0]
    return {}


def send_event_signal(signal: Signal, sender: Callable[..., Any] | None, args: Any) -> None:
    """Send one of the signals above; receivers' exceptions are logged, never raised."""
    for receiver, result in signal.send_robust(
        sender=sender, event_payload=get_event_payload(args)
    ):
        if isinstance(result, Exception):
            logger.error("outbox signal receiver %r raised", receiver, exc_info=result)
