"""The LISTEN side: one autocommit connection, multiplexing every channel the relay needs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from pgoutbox.db import translate_errors
from pgoutbox.relay.channels import (
    BUSY_CHANNEL,
    CALLS_CHANNEL,
    CATCH_ALL_CHANNEL,
    ORDERED_CHANNEL,
    stream_channel,
)
from pgoutbox.sql import query

logger = logging.getLogger(__name__)

# psycopg's notifies() also waits in short slices; ours bound how late a stop request is seen.
_STOP_CHECK_SECONDS = 0.2


def channels_for(streams: Sequence[str]) -> list[str]:
    """Channels to LISTEN on: the catch-all one (and busy listeners' announcements), or one
    per stream when streams are named; and the keep-order calls' and ordered messages' ones."""
    if streams:
        return [*(stream_channel(s) for s in streams), CALLS_CHANNEL, ORDERED_CHANNEL]
    return [CATCH_ALL_CHANNEL, BUSY_CHANNEL, CALLS_CHANNEL, ORDERED_CHANNEL]


class NotificationListener:
    """Waits for notifications on an autocommit connection; a notification is only a hint."""

    def __init__(self, conn: psycopg.Connection[Any], channels: Sequence[str]) -> None:
        if not conn.autocommit:
            raise ValueError("the LISTEN connection must be in autocommit mode")
        self.conn = conn
        self.channels = list(channels)

    def listen(self) -> None:
        """Subscribe to every channel; effective at once (autocommit)."""
        with translate_errors():
            for channel in self.channels:
                self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def wait(self, timeout: float, stop: threading.Event) -> frozenset[str]:
        """Return the channels notified as soon as a notification arrives; an empty set after
        ``timeout`` or on stop.

        Every notification already received is consumed, so one wake-up covers them all.
        """
        deadline = time.monotonic() + timeout
        with translate_errors():
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return frozenset()
                wait = min(remaining, _STOP_CHECK_SECONDS)
                first = [n.channel for n in self.conn.notifies(timeout=wait, stop_after=1)]
                if first:
                    # The generator holds the connection's lock: consume the rest only after it
                    # has finished.
                    rest = [n.channel for n in self.conn.notifies(timeout=0)]
                    return frozenset(first + rest)
        return frozenset()

    def heartbeat(self) -> float:
        """Prove the connection is alive; return ``pg_notification_queue_usage()`` (0..1)."""
        with translate_errors():
            row = self.conn.execute(query("heartbeat")).fetchone()
        return float(row[0]) if row else 0.0
