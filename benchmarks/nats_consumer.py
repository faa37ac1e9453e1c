"""JetStream consumer process: the stream of one destination, every stored message timestamped.

``python -m benchmarks.nats_consumer --destination /a/b --expect N --out FILE``: creates a
stream capturing the destination's subject, reads it with an ordered consumer (a message is
seen once the stream stored it), prints ``ready``, and ends as ``benchmarks.consumer`` does
(``--settle`` seconds after ``N`` measured messages, SIGTERM, or ``--timeout``), deleting the
stream. Writes one ``<receive time>\\t<body>`` line per message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import time

import nats
from nats.aio.msg import Msg

from pgoutbox.transports.nats import nats_subject

NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")


async def consume(args: argparse.Namespace) -> list[tuple[float, bytes]]:
    messages: list[tuple[float, bytes]] = []
    complete = asyncio.Event()
    stop = asyncio.Event()
    measured = 0
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def on_message(msg: Msg) -> None:
        nonlocal measured
        messages.append((time.time(), msg.data))
        if b"warmup" not in msg.data:
            measured += 1
            if args.expect and measured >= args.expect:
                complete.set()

    client = await nats.connect(NATS_URL)
    js = client.jetstream()
    stream = f"PGOUTBOX_BENCH_{secrets.token_hex(6)}"
    await js.add_stream(name=stream, subjects=[nats_subject(args.destination)])
    try:
        await js.subscribe(nats_subject(args.destination), cb=on_message, ordered_consumer=True)
        print("ready", flush=True)
        deadline = time.monotonic() + args.timeout
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(complete.wait(), 0.05)
            except TimeoutError:
                continue
            await asyncio.sleep(args.settle)
            break
    finally:
        await js.delete_stream(stream)
        await client.close()
    return messages


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--destination", required=True)
    parser.add_argument("--expect", type=int, default=0, help="0: until SIGTERM or timeout")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    messages = asyncio.run(consume(args))
    with open(args.out, "w") as out:
        for received_at, body in messages:
            out.write(f"{received_at:.6f}\t{body.decode('utf-8', 'replace')}\n")
    print(f"done {len(messages)}", flush=True)


if __name__ == "__main__":
    main()
