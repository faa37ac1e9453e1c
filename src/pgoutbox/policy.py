"""Rules the producer, the relay and the consumer share: retry delays and when an event dies.

Pure functions, no I/O. Neither side owns this module, so the arrows keep pointing downstream:
the producer, the relay and the consumer import it; it imports nothing of theirs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgoutbox.conf import Settings


def compute_backoff(
    attempts: int,
    *,
    base: float,
    cap: float,
    jitter: float = 0.25,
    rand: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt number ``attempts + 1``.

    ``min(cap, base * 2 ** (attempts - 1))``, then multiplied by a uniform factor in
    ``[1 - jitter, 1]`` so that rows failing together do not come back together. ``attempts``
    counts the failures so far (1 after the first failure). Never more than ``cap``.
    """
    exponent = min(max(attempts - 1, 0), 62)  # 2**62 * base is past any cap; avoids overflow
    delay = min(cap, base * 2.0**exponent)
    factor = 1.0 - jitter * (rand or random).random()
    return delay * factor


def retry_delay(attempts: int, settings: Settings) -> float:
    """Seconds before an event that has failed ``attempts`` times is tried again:
    :func:`compute_backoff` with ``RETRY_BACKOFF_BASE`` and ``RETRY_BACKOFF_MAX``."""
    return compute_backoff(
        attempts, base=settings.retry_backoff_base, cap=settings.retry_backoff_max
    )


# The first reconnect waits about half a second: a restart or a blip is usually over by then.
_RECONNECT_BASE_SECONDS = 0.5


def reconnect_delay(failures: int, settings: Settings) -> float:
    """Seconds before reconnecting to PostgreSQL or the broker after ``failures`` failures in
    a row: :func:`compute_backoff` from 0.5 s up to ``RECONNECT_BACKOFF_MAX``."""
    return compute_backoff(
        failures, base=_RECONNECT_BASE_SECONDS, cap=settings.reconnect_backoff_max
    )


def dies(attempts: int, *, max_attempts: int, final: bool = False, mortal: bool = True) -> bool:
    """Whether an event that has now failed ``attempts`` times is dead.

    The one rule: ``final`` (the event can never succeed: an invalid row, a non-retryable
    exception) kills it at once; otherwise it dies once ``attempts`` reaches ``max_attempts``,
    unless it is immortal (a keep-order head under the ``block`` policy, a broker outage that
    is nobody's fault but the broker's).
    """
    if final:
        return True
    return mortal and attempts >= max_attempts


@dataclass(frozen=True)
class Failure:
    """Why one event was not delivered, when to try it again, and whether it is now dead.

    ``bump``: add one to the row's ``attempts`` (False when the claim already counted it, as
    for calls, which are counted when leased). ``dead`` is the answer of :func:`dies`; the
    ``record_failures`` query only stores it.
    """

    event_id: int
    error: str
    delay: float
    dead: bool = False
    bump: bool = True


def failure_params(failures: Sequence[Failure]) -> dict[str, list[Any]]:
    """Parameters of the ``record_failures`` query for these failures."""
    return {
        "ids": [f.event_id for f in failures],
        "errors": [f.error for f in failures],
        "delays": [f.delay for f in failures],
        "deads": [f.dead for f in failures],
        "bumps": [f.bump for f in failures],
    }
