"""Keep-order claim cost against rows blocked behind a poison head.

A keep-order stream whose head keeps failing holds every row behind it. The relay looks for
streams with a due head on every drain, and claims the runnable rows of the others: neither
may grow with the blocked rows. Each figure is the median of ``repeats`` runs of the relay's
own named queries (``ordered_streams``, then ``claim_ordered`` of a stream that flows), on a
scratch database with ``blocked`` rows behind a head that is not due.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import psycopg

from benchmarks.infra import Run, pg_connect
from pgoutbox.sql import query

_FILL = """
INSERT INTO pgoutbox_event (stream, kind, function, args, ordered, available_at)
SELECT %(stream)s, 'call', 'bench.noop', '{"args": [], "kwargs": {}}', true,
       CASE WHEN g = 1 AND %(poison)s THEN now() + interval '1 hour' ELSE now() END
FROM generate_series(1, %(rows)s) AS g
"""


def _timed(conn: psycopg.Connection[Any], repeats: int) -> tuple[float, float]:
    """Median milliseconds of finding due streams, and of claiming the flowing stream."""
    find, claim = [], []
    for _ in range(repeats):
        with conn.transaction(force_rollback=True):
            started = time.perf_counter()
            streams = [s for (s,) in conn.execute(query("ordered_streams"), {"streams": []})]
            find.append((time.perf_counter() - started) * 1000)
            assert "flowing" in streams, streams  # "blocked" too, where heads are not checked
            started = time.perf_counter()
            rows = conn.execute(query("claim_ordered"), {"stream": "flowing", "limit": 500})
            assert len(rows.fetchall()) == 500
            claim.append((time.perf_counter() - started) * 1000)
    return statistics.median(find), statistics.median(claim)


def run_claim_cost(run: Run, *, blocked: list[int], repeats: int) -> dict[str, Any]:
    results = []
    with pg_connect(run.database) as conn:
        conn.execute(_FILL, {"stream": "flowing", "rows": 2000, "poison": False})
        filled = 0
        for target in sorted(blocked):
            conn.execute(
                _FILL, {"stream": "blocked", "rows": target - filled, "poison": filled == 0}
            )
            filled = target
            conn.execute("VACUUM ANALYZE pgoutbox_event")
            find_ms, claim_ms = _timed(conn, repeats)
            result = {"blocked_rows": target, "find_streams_ms": find_ms, "claim_ms": claim_ms}
            print(result, flush=True)
            results.append(result)
    return {"repeats": repeats, "results": results}
