"""A private asyncio event loop in a thread, behind the synchronous transport Protocol.

The relay is synchronous; aiormq and nats-py are asyncio clients. Each asyncio transport owns
one :class:`LoopThread`: the client's connection lives on that loop, and the relay's thread
hands it whole coroutines (connect, publish a batch, close) and waits for their result. The
relay never shares the loop with anything else, so a slow user coroutine cannot delay a
broker confirm, and closing the transport stops the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread until :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread unless it runs."""
        if self.running:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            # Let cancelled tasks (a client's reader, a timed-out publish) finish unwinding.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        thread = threading.Thread(target=run, name=self._name, daemon=True)
        thread.start()
        ready.wait()
        self._loop, self._thread = loop, thread

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coroutine`` on the loop and return its result.

        Raises what the coroutine raises, or ``TimeoutError`` after ``timeout`` seconds (the
        coroutine is then cancelled).
        """
        if self._loop is None or not self.running:
            coroutine.close()
            raise RuntimeError(f"{self._name} is not running")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout:g}s") from None

    def stop(self) -> None:
        """Stop the loop and join its thread; never raises."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
