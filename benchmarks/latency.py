"""Commit → consumer latency at a steady rate: ``python benchmarks/latency.py [--count N]``.

The same as ``python -m benchmarks latency``: a producer process commits events at a steady
rate, ``manage.py outbox_listen`` relays them to RabbitMQ with receipts, a STOMP consumer
timestamps them; prints JSON with p50/p90/p99/max latency and events/s.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.__main__ import main

    main(["latency", *sys.argv[1:]])
