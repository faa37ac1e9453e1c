"""The task both Django Tasks backends run in ``python -m benchmarks tasks``: it returns the
wall-clock time it started, which the benchmark compares with the enqueuing commit's.

Imports Django only, so that the scratch virtualenv of django-tasks-db (without pgoutbox) can
import it too.
"""

from __future__ import annotations

import time

from django.tasks import task


@task
def started_at() -> float:
    return time.time()
