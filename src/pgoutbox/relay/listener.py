"""The LISTEN side: one autocommit connection, multiplexing every channel the relay needs."""

from __future__ import annotations

import logging
import select
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

# The socket is waited on in slices: they bound how late a stop request is seen.
_STOP_CHECK_SECONDS = 0.2


def channels_for(streams: Sequence[str]) -> list[str]:
    """Channels to LISTEN on: the catch-all one (and busy listeners' announcements), or one
    per stream when streams are named; and the keep-order calls' and ordered messages' ones."""
    if streams:
        return [*(stream_channel(s) for s in streams), CALLS_CHANNEL, ORDERED_CHANNEL]
    return [CATCH_ALL_CHANNEL, BUSY_CHANNEL, CALLS_CHANNEL, ORDERED_CHANNEL]


class NotificationListener:
    """Waits for notifications on an autocommit connection; a notification is only a hint.

    It waits on the connection's socket itself and hands what arrived to a notify handler, the
    one path every notification takes, whether it arrived while waiting or during a query on
    this connection (heartbeat, busy lock): one ``select`` and one read per wake-up, where
    psycopg's ``notifies()`` generator costs a lock, a generator and a timeout exception per
    call, about a fifth of an idle-to-busy listener's CPU at a steady 200 events/s.
    """

    def __init__(self, conn: psycopg.Connection[Any], channels: Sequence[str]) -> None:
        if not conn.autocommit:
            raise ValueError("the LISTEN connection must be in autocommit mode")
        self.conn = conn
        self.channels = list(channels)
        self._received: set[str] = set()
        self._handling = False
        self._poll: Any = None

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
        if not self._handling:
            # From the first wait on: notifications go to the handler, never to psycopg's
            # backlog (which nobody would read).
            self.conn.add_notify_handler(self._on_notify)
            self._handling = True
            # poll(), not select(): select() refuses a socket numbered past FD_SETSIZE (1024),
            # which a process holding many files or connections gets. (No poll() on Windows,
            # where select() has no such limit.)
            if hasattr(select, "poll"):
                self._poll = select.poll()
                self._poll.register(self.conn.pgconn.socket, select.POLLIN)
        deadline = time.monotonic() + timeout
        pgconn = self.conn.pgconn
        with translate_errors():
            while not stop.is_set():
                self._read(pgconn)
                if self._received:
                    channels = frozenset(self._received)
                    self._received.clear()
                    return channels
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return frozenset()
                self._wait_readable(pgconn, min(remaining, _STOP_CHECK_SECONDS))
        return frozenset()

    def _wait_readable(self, pgconn: Any, timeout: float) -> None:
        if self._poll is not None:
            self._poll.poll(timeout * 1000)
        else:
            select.select([pgconn.socket], [], [], timeout)

    def _read(self, pgconn: Any) -> None:
        """Read what the socket holds (never blocks) and pass every notification in it to the
        handler; a broken connection raises."""
        with self.conn.lock:
            pgconn.consume_input()
            while (notify := pgconn.notifies()) is not None:
                pgconn.notify_handler(notify)

    def _on_notify(self, notify: psycopg.Notify) -> None:
        self._received.add(notify.channel)

    def heartbeat(self) -> float:
        """Prove the connection is alive; return ``pg_notification_queue_usage()`` (0..1)."""
        with translate_errors():
            row = self.conn.execute(query("heartbeat")).fetchone()
        return float(row[0]) if row else 0.0
