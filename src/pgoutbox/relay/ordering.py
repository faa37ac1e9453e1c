"""Keep-order streams (function events) and ordered message streams: what a failing head event
does to its stream (pure policy, no I/O)."""

from __future__ import annotations

from pgoutbox.policy import Failure, dies


def head_failure(
    event_id: int,
    error: str,
    *,
    attempts: int,
    delay: float,
    final: bool,
    policy: str,
    max_attempts: int,
    bump: bool = True,
) -> tuple[Failure, bool]:
    """Return the failure to record for a keep-order stream's head and whether the stream goes on.

    ``attempts`` counts this failure. ``block`` (jaiminho's behaviour): the head is retried
    with backoff for ever, never dead, and everything behind it waits (an unregistered
    function is no failure: it waits, uncounted, for a relay that knows it).
    ``dead-letter-and-continue``: the head is dead after ``max_attempts`` failures (at once
    when ``final``) and the stream goes on with the next event. Ordered messages follow the
    same rule: a broker's refusal is a failure, an invalid row a ``final`` one.
    """
    if policy == "block":
        return Failure(event_id, error, delay, dead=False, bump=bump), False
    dead = dies(attempts, max_attempts=max_attempts, final=final)
    return Failure(event_id, error, delay, dead=dead, bump=bump), dead
