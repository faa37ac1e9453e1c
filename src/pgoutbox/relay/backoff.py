"""Retry delays: pure functions, no I/O."""

from __future__ import annotations

import random


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
