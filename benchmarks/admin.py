"""The admin's changelist on a big outbox: time per page with 1,000,000 rows.

The rows are written by one ``INSERT ... SELECT generate_series`` into the scratch database
(pending messages over 20 streams, a tenth of them calls, one in a thousand dead), then
``VACUUM ANALYZE``. Each view is fetched through Django's test client in this process (the
full request: URL resolution, queries, template rendering), after warm-up requests.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from benchmarks.infra import Run, pg_connect

_FILL = """
INSERT INTO pgoutbox_event (stream, kind, destination, function, args, body, status,
                            attempts, last_error)
SELECT 's' || (g %% 20),
       CASE WHEN g %% 10 = 0 THEN 'call' ELSE 'message' END,
       CASE WHEN g %% 10 = 0 THEN NULL ELSE '/queue/orders-' || (g %% 50) END,
       CASE WHEN g %% 10 = 0 THEN 'app.outbox.charge' END,
       CASE WHEN g %% 10 = 0 THEN '{"args": [1], "kwargs": {}}'::jsonb END,
       convert_to(json_build_object('order', g, 'note', repeat('x', 200))::text, 'UTF8'),
       CASE WHEN g %% 1000 = 7 THEN 'dead' ELSE 'pending' END,
       CASE WHEN g %% 1000 = 7 THEN 25 ELSE 0 END,
       CASE WHEN g %% 1000 = 7 THEN 'broker rejected: no exchange' END
FROM generate_series(1, %(rows)s) AS g
"""


def run_admin(run: Run, *, rows: int, repeats: int) -> dict[str, Any]:
    started = time.monotonic()
    with pg_connect(run.database) as conn:
        conn.execute("SET pgoutbox.notify = 'off'")
        conn.execute(_FILL, {"rows": rows})
        conn.execute("VACUUM ANALYZE pgoutbox_event")
        size = conn.execute("SELECT pg_total_relation_size('pgoutbox_event')").fetchone()
        message_id, event_id = conn.execute(
            "SELECT message_id::text, id FROM pgoutbox_event WHERE id = %s", (rows // 2,)
        ).fetchone() or ("", 0)
    fill_seconds = time.monotonic() - started

    os.environ.update(DJANGO_SETTINGS_MODULE="benchmarks.settings")
    os.environ.update(PGOUTBOX_TEST_DB_NAME=run.database)
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the client then keeps each response's template context
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    base = "/admin/pgoutbox/outboxevent/"
    views = {
        "changelist page 1": base,
        "changelist page 100": base + "?p=100",
        "filter status=dead": base + "?status__exact=dead",
        "filter kind=call": base + "?kind=call",
        "filter stream=s7": base + "?stream=s7",
        "filter status=dead & stream=s7": base + "?status__exact=dead&stream=s7",
        "search message id": base + f"?q={message_id}",
        "search destination (exact, no index)": base + "?q=/queue/orders-3",
        "detail page": base + f"{event_id}/change/",
    }
    results = []
    try:
        for label, url in views.items():
            for _ in range(2):  # warm-up: caches, the first plan
                assert client.get(url).status_code == 200, url
            times = []
            for _ in range(repeats):
                with CaptureQueriesContext(connections["default"]) as queries:
                    t0 = time.perf_counter()
                    response = client.get(url)
                    times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, url
            results.append(
                {
                    "label": label,
                    "url": url,
                    "median_ms": round(statistics.median(times), 1),
                    "max_ms": round(max(times), 1),
                    "queries": len(queries.captured_queries),
                    "rows_shown": len(response.context["cl"].result_list)
                    if response.context and "cl" in response.context
                    else None,
                }
            )
            print(results[-1], flush=True)
    finally:
        connections.close_all()
    return {
        "rows": rows,
        "table_mb": round((size[0] if size else 0) / 1e6, 1),
        "fill_seconds": round(fill_seconds, 1),
        "repeats": repeats,
        "results": results,
    }
