"""What every raw stomp.py publisher of the benchmarks shares (the broker's floor, the peers'
functions): receipts collected by the receiver thread, and the producers' JSON. Imports only
stomp.py, so that the peers' own virtualenv can use it too."""

from __future__ import annotations

import json
import threading
from typing import Any

import stomp


class Receipts(stomp.ConnectionListener):  # type: ignore[misc]
    """Every RECEIPT seen; wait on :attr:`changed` for more."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.seen: set[str] = set()

    def on_receipt(self, frame: Any) -> None:
        with self.changed:
            self.seen.add(frame.headers["receipt-id"])
            self.changed.notify_all()


def write_produced(
    path: str, *, per_tx: int, count: int, started: float, finished: float, commits: list[float]
) -> None:
    """A producer's record, read by :func:`benchmarks.e2e.analyze`: the stamp of every
    transaction, ``per_tx`` events each."""
    with open(path, "w") as out:
        json.dump(
            {
                "per_tx": per_tx,
                "count": count,
                "started": started,
                "finished": finished,
                "commits": commits,
            },
            out,
        )
