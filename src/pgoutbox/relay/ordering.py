"""Keep-order streams: what a failing head event does to its stream (pure policy, no I/O)."""

from __future__ import annotations

from pgoutbox.relay.store import Failure


def head_failure(
    event_id: int,
    error: str,
    *,
    attempts: int,
    delay: float,
    final: bool,
    policy: str,
    max_attempts: int,
) -> tuple[Failure, bool]:
    """Return the failure to record for a keep-order stream's head and whether the stream goes on.

    ``block`` (jaiminho's behaviour): the head is retried with backoff for ever, never dead,
    and everything behind it waits; even an unregistered function blocks (deploy the listener
    that knows it). ``dead-letter-and-continue``: the head is dead after ``max_attempts``
    failures (at once when ``final``) and the stream goes on with the next event.
    """
    if policy == "block":
        return Failure(event_id, error, delay, mortal=False), False
    dies = final or attempts + 1 >= max_attempts
    return Failure(event_id, error, delay, final=final), dies
