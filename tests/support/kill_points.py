"""Deterministic kill points for relay processes.

``PGOUTBOX['TRANSPORT'] = "tests.support.kill_points.KillPointTransport"`` and
``PGOUTBOX_KILL_POINT=<point>:<n>`` make a relay SIGKILL itself at ``<point>`` of its
``n``-th batch:

- ``before-publish``: rows claimed and locked, nothing sent;
- ``after-publish``: every message of the batch confirmed by the broker, rows not yet
  deleted (the worst moment: the whole batch is sent again by the next relay).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence

from pgoutbox.transports.base import Message, PublishOutcome
from pgoutbox.transports.stomp import StompTransport

KILL_POINT_ENV = "PGOUTBOX_KILL_POINT"
TRANSPORT_PATH = f"{__name__}.KillPointTransport"


class KillPointTransport(StompTransport):
    """The STOMP transport, dying at the kill point named in the environment."""

    _batches = 0

    def publish_batch(self, messages: Sequence[Message]) -> PublishOutcome:
        point, _, nth = os.environ.get(KILL_POINT_ENV, "").partition(":")
        self._batches += 1
        due = nth.isdigit() and self._batches == int(nth)
        if due and point == "before-publish":
            os.kill(os.getpid(), signal.SIGKILL)
        outcome = super().publish_batch(messages)
        if due and point == "after-publish":
            os.kill(os.getpid(), signal.SIGKILL)
        return outcome
