"""Django settings of the benchmarks' subprocesses: the test settings plus a few env overrides.

``PGOUTBOX_TEST_DB_NAME`` names the scratch database (read by ``tests.settings``);
``PGOUTBOX_BENCH_PERSISTENT`` (``1``/``0``), ``PGOUTBOX_BENCH_BATCH_SIZE`` and
``PGOUTBOX_BENCH_LOG`` adjust what the listener runs with; ``PGOUTBOX_BENCH_PREFETCH`` is
the ``subscribe`` consumer's ``CONSUMER_PREFETCH``; ``PGOUTBOX_BENCH_TRANSPORT`` (a dotted
path) replaces the STOMP transport.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, LOGGING, PGOUTBOX

PGOUTBOX = {
    **PGOUTBOX,
    "STOMP_PERSISTENT": os.environ.get("PGOUTBOX_BENCH_PERSISTENT", "1") == "1",
    "BATCH_SIZE": int(os.environ.get("PGOUTBOX_BENCH_BATCH_SIZE", "500")),
    "CONSUMER_PREFETCH": int(os.environ.get("PGOUTBOX_BENCH_PREFETCH", "1")),
}
# The subscribe benchmark compares Django's default (a new connection per message, since
# close_old_connections() runs before each) with persistent connections.
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("PGOUTBOX_BENCH_CONN_MAX_AGE", "0"))
if os.environ.get("PGOUTBOX_BENCH_TRANSPORT"):
    PGOUTBOX["TRANSPORT"] = os.environ["PGOUTBOX_BENCH_TRANSPORT"]
LOGGING = {
    **LOGGING,
    "loggers": {
        "pgoutbox": {"handlers": ["console"], "level": os.environ.get("PGOUTBOX_BENCH_LOG", "INFO")}
    },
}
# write_overhead's "none" mode disables the NOTIFY trigger on purpose (the no-trigger ceiling);
# the listener it starts must not refuse to run for that.
SILENCED_SYSTEM_CHECKS = ["pgoutbox.E001"]
# python -m benchmarks tasks: the listener runs the benchmark's Django task.
if os.environ.get("PGOUTBOX_BENCH_TASKS") == "1":
    PGOUTBOX["FUNCTION_MODULES"] = ["benchmarks.task_functions"]
