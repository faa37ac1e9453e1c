"""Notification channel names; the same rule as the SQL function ``pgoutbox_channel_v1``."""

from __future__ import annotations

import hashlib

CATCH_ALL_CHANNEL = "pgoutbox"
# pgoutbox.notify = 'adaptive': a listener that takes the busy lock says so here, so that idle
# listeners help while producers skip NOTIFY (relay/engine.py).
BUSY_CHANNEL = "pgoutbox_busy"
# Producers of keep-order calls NOTIFY here (payload: the stream), so the calls lane wakes for
# them and not for every message. Publish-on-commit calls are run by their producer; the relay
# only takes them over after their lease, at a poll.
CALLS_CHANNEL = "pgoutbox_calls"
# Producers of ordered messages NOTIFY here (payload: the stream), so the ordered claim runs
# for them and never for unordered messages (relay/ordered_messages.py).
ORDERED_CHANNEL = "pgoutbox_ordered"
_STREAM_PREFIX = "pgoutbox_s:"
_HASHED_PREFIX = "pgoutbox_h:"
_MAX_IDENTIFIER_BYTES = 63


def stream_channel(stream: str) -> str:
    """Channel notified for ``stream``.

    ``pgoutbox_s:<stream>`` when that fits PostgreSQL's 63-byte identifier limit, otherwise
    ``pgoutbox_h:<md5 hex of stream>``. The prefixes differ, so the two forms never collide.
    """
    channel = _STREAM_PREFIX + stream
    if len(channel.encode("utf-8")) <= _MAX_IDENTIFIER_BYTES:
        return channel
    return _HASHED_PREFIX + hashlib.md5(stream.encode("utf-8"), usedforsecurity=False).hexdigest()
