"""SIGTERM and SIGINT set a stop event: the relay finishes its batch and returns."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

logger = logging.getLogger(__name__)


def stop_on_signals(stop: threading.Event, *, second_kills: bool = False) -> None:
    """Make SIGTERM and SIGINT set ``stop`` (main thread only); a second signal is logged, or,
    with ``second_kills`` (user code runs in this thread and may hang), ends the process."""

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set() and second_kills:
            logger.warning("%s received again; exiting now", name)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)  # not an exception: user code would take it as its own
            return
        if stop.is_set():
            logger.warning("%s received again; still finishing the current batch", name)
        else:
            logger.info("%s received; finishing the current batch, then exiting", name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
