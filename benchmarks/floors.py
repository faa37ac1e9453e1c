"""Each broker's own floor: the same messages published by its raw client, no pgoutbox.

:func:`raw_run` publishes ``count`` messages (body ``{"seq": n}``, ``content-type`` and
``pgoutbox-message-id`` headers, persistent) to a destination a consumer process reads, either
one at a time at ``rate`` per second, waiting for each confirm (the latency floor: publish →
consumer), or flat out in pipelined batches of ``batch`` with every confirm awaited per batch
(the drain floor: confirmed messages per second). Raw clients: stomp.py with a receipt on every
SEND (``TCP_NODELAY`` on), aiormq with publisher confirms, nats-py JetStream publishes.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiormq
import nats
import stomp
from pamqp import commands as spec

from benchmarks.e2e import analyze, read_consumer, start_consumer
from benchmarks.infra import STOMP, Run
from benchmarks.receipts import Receipts

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")

Batch = Sequence[tuple[int, str]]  # (seq, message id)


def _body(seq: int) -> bytes:
    return json.dumps({"warmup": 0} if seq < 0 else {"seq": seq}).encode()


async def _stomp_publisher(
    destination: str, persistent: bool = True
) -> tuple[Callable[[Batch], Awaitable[None]], Any]:
    conn = stomp.StompConnection12([STOMP], vhost="/", auto_decode=False, heartbeats=(0, 0))
    receipts = Receipts()
    conn.set_listener("receipts", receipts)
    conn.connect("guest", "guest", wait=True)
    conn.transport.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def publish(batch: Batch) -> None:
        for seq, message_id in batch:
            headers = {
                "content-type": "application/json",
                "pgoutbox-message-id": message_id,
                **({"persistent": "true"} if persistent else {}),
                "receipt": message_id,
            }
            conn.send(destination, _body(seq), headers=headers)
        wanted = {message_id for _, message_id in batch}
        with receipts.changed:
            if not receipts.changed.wait_for(lambda: wanted <= receipts.seen, 30):
                raise TimeoutError("STOMP receipts missing")
            receipts.seen -= wanted

    async def close() -> None:
        conn.disconnect()

    return publish, close


async def _amqp_publisher(destination: str) -> tuple[Callable[[Batch], Awaitable[None]], Any]:
    connection = await aiormq.connect(AMQP_URL)
    channel = await connection.channel(publisher_confirms=True)
    queue = destination.removeprefix("/queue/")

    async def publish(batch: Batch) -> None:
        confirms = [
            channel.basic_publish(
                _body(seq),
                routing_key=queue,
                mandatory=True,
                properties=spec.Basic.Properties(
                    message_id=message_id,
                    content_type="application/json",
                    delivery_mode=2,
                    headers={"pgoutbox-message-id": message_id},
                ),
                wait=False,  # pipelined: do not wait for each frame to be written
            )
            for seq, message_id in batch
        ]
        await asyncio.gather(*confirms)

    return publish, connection.close


async def _nats_publisher(destination: str) -> tuple[Callable[[Batch], Awaitable[None]], Any]:
    client = await nats.connect(NATS_URL)
    js = client.jetstream()
    subject = destination[1:].replace("/", ".")

    async def publish(batch: Batch) -> None:
        acks = [
            js.publish(
                subject,
                _body(seq),
                headers={
                    "content-type": "application/json",
                    "pgoutbox-message-id": message_id,
                    "Nats-Msg-Id": message_id,
                },
            )
            for seq, message_id in batch
        ]
        await asyncio.gather(*acks)

    return publish, client.close


PUBLISHERS = {"stomp": _stomp_publisher, "amqp": _amqp_publisher, "jetstream": _nats_publisher}


async def _publish_all(
    kind: str, destination: str, count: int, rate: float, batch: int, persistent: bool
) -> Any:
    if kind == "stomp":
        publish, close = await _stomp_publisher(destination, persistent)
    else:
        publish, close = await PUBLISHERS[kind](destination)
    await publish([(-1, str(uuid.uuid4()))])  # warm-up: connection and route
    ids = [(seq, str(uuid.uuid4())) for seq in range(count)]
    sent: list[float] = []
    started = time.time()
    origin = time.monotonic()
    try:
        if rate:
            for seq, message_id in ids:
                delay = origin + seq / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent.append(time.time())
                await publish([(seq, message_id)])
        else:
            for start in range(0, count, batch):
                chunk = ids[start : start + batch]
                sent.extend([time.time()] * len(chunk))
                await publish(chunk)
    finally:
        await close()
    finished = time.time()
    return {"per_tx": 1, "count": count, "started": started, "finished": finished, "commits": sent}


def raw_run(
    run: Run,
    *,
    kind: str,
    label: str,
    count: int,
    rate: float,
    batch: int = 500,
    persistent: bool = True,
) -> dict[str, Any]:
    """Publish with ``kind``'s raw client to a fresh destination a consumer process reads
    (``persistent=False``: STOMP messages without ``persistent: true``, as pgoutbox sends them
    with ``STOMP_PERSISTENT = False``)."""
    sink = "jetstream" if kind == "jetstream" else "stomp"
    destination = run.destination(sink)
    expected_seconds = count / rate if rate else count / 1000
    log = f"{label}-consumer"
    consumer = start_consumer(
        run, destination, count, log, timeout=expected_seconds + 120, sink=sink
    )
    produced = asyncio.run(_publish_all(kind, destination, count, rate, batch, persistent))
    consumer.wait(timeout=expected_seconds + 120)
    result = analyze(produced, read_consumer(run, log))
    seconds = produced["finished"] - produced["started"]
    return {
        "label": label,
        "settings": {
            "client": kind,
            "rate_per_s": rate or "flat out",
            "batch": batch,
            "persistent": persistent,
        },
        **result,
        "publish_confirmed_per_s": round(count / seconds, 1),
    }
