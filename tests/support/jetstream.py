"""A real JetStream stream for tests, read back by an ordered consumer: what the stream stored,
with the same accounting interface as :class:`tests.support.ledger.CountingConsumer`."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any, Self

import nats
from nats.aio.msg import Msg

from tests.support.ledger import Delivery


class JetStreamSink:
    """Creates a stream capturing ``<subject>.>`` and records every message it stores (each
    stored message once: the ordered consumer reads the stream, not the publishes)."""

    def __init__(self, url: str) -> None:
        self.url = url
        token = uuid.uuid4().hex[:12]
        self.stream = f"PGOUTBOX_TEST_{token}"
        self.subject = f"pgoutbox-test.{token}"
        self.destination = f"/pgoutbox-test/{token}/events"
        self.deliveries: list[Delivery] = []
        # Message id -> headers as stored, once keep_headers is set (cheap accounting else).
        self.keep_headers = False
        self.headers: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._client: Any = None

    def _run(self, coroutine: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self) -> Self:
        self._thread.start()
        self._run(self._start())
        return self

    async def _start(self) -> None:
        self._client = await nats.connect(self.url)
        js = self._client.jetstream()
        await js.add_stream(name=self.stream, subjects=[f"{self.subject}.>"])
        await js.subscribe(f"{self.subject}.>", cb=self._on_message, ordered_consumer=True)

    async def _on_message(self, msg: Msg) -> None:
        headers = msg.headers or {}
        delivery = Delivery(headers.get("pgoutbox-message-id", ""), msg.data, time.monotonic())
        with self._lock:
            self.deliveries.append(delivery)
            if self.keep_headers:
                self.headers[delivery.message_id] = dict(headers)

    def stored(self) -> int:
        """Messages in the stream, as the server counts them."""

        async def count() -> int:
            info = await self._client.jetstream().stream_info(self.stream)
            return int(info.state.messages)

        return int(self._run(count()))

    def stop(self) -> None:
        async def stop() -> None:
            if self._client is not None:
                try:
                    await self._client.jetstream().delete_stream(self.stream)
                finally:
                    await self._client.close()
            # The ordered consumer's housekeeping tasks outlive the client: end them here.
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self._run(stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    # The accounting interface shared with CountingConsumer.
    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def count(self) -> int:
        with self._lock:
            return len(self.deliveries)

    def wait_for_count(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.count() < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.count()

    def wait_for_ids(self, ids: Any, timeout: float) -> set[str]:
        missing = set(ids)
        deadline = time.monotonic() + timeout
        while True:
            missing.difference_update(d.message_id for d in self.snapshot())
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.05)

    def quiet_for(self, seconds: float) -> list[Delivery]:
        time.sleep(seconds)
        return self.snapshot()
