"""Retry delays: pure functions, no I/O."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

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
