"""The private event-loop thread behind the asyncio transports."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pgoutbox.transports.loop import LoopThread


def test_runs_coroutines_on_its_own_thread_and_stops():
    loop = LoopThread("pgoutbox-test-loop")
    loop.start()
    loop.start()  # idempotent

    async def where() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert loop.run(where(), 5) == "pgoutbox-test-loop"
    loop.stop()
    assert not loop.running
    assert "pgoutbox-test-loop" not in {t.name for t in threading.enumerate()}
    loop.stop()  # never raises


def test_a_timeout_cancels_the_coroutine_and_errors_come_back():
    loop = LoopThread("pgoutbox-test-loop")
    loop.start()
    cancelled = threading.Event()

    async def hang() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def fail() -> None:
        raise ValueError("from the loop")

    with pytest.raises(TimeoutError, match=r"no answer within 0\.05s"):
        loop.run(hang(), 0.05)
    assert cancelled.wait(5)
    with pytest.raises(ValueError, match="from the loop"):
        loop.run(fail(), 5)
    loop.stop()


def test_running_on_a_stopped_loop_is_an_error_not_a_hang():
    loop = LoopThread("pgoutbox-test-loop")

    async def nothing() -> None:
        pass

    with pytest.raises(RuntimeError, match="not running"):
        loop.run(nothing(), 1)
