"""Round trips a psycopg connection makes, counted from libpq's own protocol trace: one per
ReadyForQuery the server sends (the end of each query or Sync)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import pq


@contextlib.contextmanager
def round_trips(conn: psycopg.Connection[Any]) -> Iterator[list[int]]:
    """Trace ``conn`` inside the block; the list yielded holds the count once it ends."""
    counted: list[int] = []
    with tempfile.TemporaryFile() as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield counted
        finally:
            conn.pgconn.untrace()
            trace.seek(0)
            lines = trace.read().decode("utf-8", "replace").splitlines()
            counted.append(sum(line.split("\t")[2:3] == ["ReadyForQuery"] for line in lines))
