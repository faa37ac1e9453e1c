"""The producer of ``python -m benchmarks tasks``, for either backend (run with its settings and
its virtualenv): ``python -m benchmarks.tasks_producer steady|backlog COUNT RATE OUT``.

``steady``: one task per transaction at RATE per second, the commit's wall-clock time recorded
after COMMIT returned. ``backlog``: COUNT tasks in transactions of 1,000. Writes
``{result id: commit time}`` as JSON to OUT.
"""

from __future__ import annotations

import json
import sys
import time

import django


def main(mode: str, count: int, rate: float, out: str) -> None:
    django.setup()
    from django.db import transaction

    from benchmarks.task_functions import started_at

    committed: dict[str, float] = {}
    if mode == "steady":
        begin = time.monotonic()
        for n in range(count):
            pause = begin + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            with transaction.atomic():
                result = started_at.enqueue()
            committed[result.id] = time.time()
    else:
        for first in range(0, count, 1000):
            with transaction.atomic():
                ids = [started_at.enqueue().id for _ in range(min(1000, count - first))]
            now = time.time()
            committed.update(dict.fromkeys(ids, now))
    with open(out, "w") as file:
        json.dump(committed, file)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
