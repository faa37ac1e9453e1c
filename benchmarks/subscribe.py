"""Messages per second through ``manage.py subscribe``, per prefetch and callback.

A queue is filled first (persistent messages, a receipt each, pipelined); then ``python -m
django subscribe`` starts on it and the clock runs from its "subscribed to" log line until the
last message is handled: for ``record`` until the inbox holds every message id, for
``ack_only`` until the callback saw the last message (it writes one row then); both polled
every 20 ms. The
consumer's CPU seconds (psutil) over the same span tell whether it is bound by its own
Python or by waiting on PostgreSQL and RabbitMQ. Variants: prefetch 1 and 50, Django's
default ``CONN_MAX_AGE = 0`` (the consumer calls ``close_old_connections()`` before each
message, so that is one new PostgreSQL connection per message) and ``CONN_MAX_AGE = 60``, and
a callback without database work.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psutil
import stomp

from benchmarks.infra import STOMP, Run


class _Receipts(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def on_receipt(self, frame: Any) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()


def fill(destination: str, count: int, label: str) -> None:
    """SEND ``count`` persistent JSON messages, each with a receipt; wait for all of them."""
    conn = stomp.StompConnection12([STOMP], vhost="/")
    receipts = _Receipts()
    conn.set_listener("r", receipts)
    conn.connect("guest", "guest", wait=True)
    try:
        for n in range(count):
            conn.send(
                destination,
                f'{{"ref": "{label}-{n}"}}',
                headers={
                    "persistent": "true",
                    "dop-msg-id": f"{label}-{n}",
                    "receipt": str(n),
                    **({"last": f"{label}-done"} if n == count - 1 else {}),
                },
            )
        with receipts.changed:
            if not receipts.changed.wait_for(lambda: receipts.count >= count, 60):
                raise TimeoutError(f"{receipts.count}/{count} receipts")
    finally:
        conn.disconnect()


def consume_run(
    run: Run, *, callback: str, prefetch: int, conn_max_age: int, count: int
) -> dict[str, Any]:
    destination = run.queue()
    queue_name = destination.rsplit("/", 1)[-1]
    label = f"{callback}-prefetch{prefetch}-conn_max_age{conn_max_age}"
    fill(destination, count, label)
    log = f"subscribe-{label}.log"
    process = run.start(
        ["-m", "django", "subscribe", f"benchmarks.callbacks.{callback}", destination],
        log=log,
        env=run.env(
            PGOUTBOX_BENCH_PREFETCH=str(prefetch), PGOUTBOX_BENCH_CONN_MAX_AGE=str(conn_max_age)
        ),
    )
    run.wait_for_log(log, "subscribed to", process, timeout=60)
    started = time.monotonic()
    cpu_start = sum(psutil.Process(process.pid).cpu_times()[:2])
    deadline = started + 120
    if callback == "record":
        query, params, target = (
            "SELECT count(*) FROM pgoutbox_received WHERE consumer = %s",
            [queue_name],
            count,
        )
    else:
        query, params, target = (
            "SELECT count(*) FROM app_order WHERE reference = %s",
            [f"{label}-done"],
            1,
        )
    while run.sql(query, params)[0][0] < target and time.monotonic() < deadline:
        time.sleep(0.02)
    done = count if run.sql(query, params)[0][0] >= target else 0
    elapsed = time.monotonic() - started
    cpu = sum(psutil.Process(process.pid).cpu_times()[:2]) - cpu_start
    return {
        "label": label,
        "callback": callback,
        "prefetch": prefetch,
        "conn_max_age": conn_max_age,
        "messages": count,
        "settled": done,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(done / elapsed, 1),
        "ms_per_message": round(1000 * elapsed / max(done, 1), 3),
        "consumer_cpu_s": round(cpu, 3),
        "consumer_cpu_share": round(cpu / elapsed, 3),
    }


def run_subscribe(run: Run, *, count: int) -> dict[str, Any]:
    results = []
    for callback, prefetch, conn_max_age in (
        ("record", 1, 0),
        ("record", 1, 60),
        ("record", 50, 0),
        ("record", 50, 60),
        ("ack_only", 50, 60),
    ):
        result = consume_run(
            run, callback=callback, prefetch=prefetch, conn_max_age=conn_max_age, count=count
        )
        print(result, flush=True)
        results.append(result)
    return {"results": results}
