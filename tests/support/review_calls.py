"""Decorated functions that misbehave in a relay process (loaded there with
``PGOUTBOX['FUNCTION_MODULES']``): one takes its process down, one is slow. Each run leaves a
line in the file named by ``PGOUTBOX_REVIEW_RUNS``, so the test sees runs across processes."""

from __future__ import annotations

import os
import time

from pgoutbox import save_to_outbox


def _mark(name: str) -> None:
    path = os.environ.get("PGOUTBOX_REVIEW_RUNS")
    if path:
        with open(path, "a") as out:
            out.write(f"{name}\n")


@save_to_outbox
def takes_the_process_down(token: str) -> None:
    """As an OOM kill or a crash in a C extension does: nothing after this line runs."""
    _mark("takes_the_process_down")
    os._exit(70)


@save_to_outbox
def slow(seconds: float) -> None:
    _mark("slow")
    time.sleep(seconds)
