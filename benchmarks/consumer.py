"""Consumer process: subscribe to one destination, timestamp every message, write them out.

``python -m benchmarks.consumer --destination /queue/x --expect N --out FILE``. Prints
``ready`` once the broker confirmed the subscription. Stops ``--settle`` seconds after ``N``
measured messages (bodies without ``warmup``) arrived, so late duplicates are still counted; or
on SIGTERM; or after ``--timeout``. Writes one ``<receive time>\\t<body>`` line per message.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from types import FrameType
from typing import Any

import stomp

from benchmarks.infra import STOMP


class Recorder(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self, expect: int) -> None:
        self.expect = expect
        self.messages: list[tuple[float, bytes]] = []
        self.measured = 0
        self.subscribed = threading.Event()
        self.complete = threading.Event()

    def on_receipt(self, frame: Any) -> None:
        self.subscribed.set()

    def on_message(self, frame: Any) -> None:
        now = time.time()
        body: bytes = frame.body
        self.messages.append((now, body))
        if b"warmup" not in body:
            self.measured += 1
            if self.expect and self.measured >= self.expect:
                self.complete.set()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--destination", required=True)
    parser.add_argument("--expect", type=int, default=0, help="0: until SIGTERM or timeout")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    recorder = Recorder(args.expect)
    conn = stomp.StompConnection12([STOMP], vhost="/", auto_decode=False, heartbeats=(0, 0))
    conn.set_listener("recorder", recorder)
    conn.connect("guest", "guest", wait=True)
    conn.subscribe(args.destination, id="1", ack="auto", headers={"receipt": "subscribed"})
    if not recorder.subscribed.wait(10):
        raise SystemExit("no SUBSCRIBE receipt")
    print("ready", flush=True)

    deadline = time.monotonic() + args.timeout
    while not stop.is_set() and time.monotonic() < deadline:
        if recorder.complete.wait(0.05):
            stop.wait(args.settle)
            break
    conn.disconnect()
    with open(args.out, "w") as out:
        for received_at, body in list(recorder.messages):
            out.write(f"{received_at:.6f}\t{body.decode('utf-8', 'replace')}\n")
    print(f"done {len(recorder.messages)}", flush=True)


if __name__ == "__main__":
    main()
