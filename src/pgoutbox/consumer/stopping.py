"""SIGTERM and SIGINT for ``manage.py subscribe``: the first finishes the message in hand and
stops; a second stops the process at once (a callback may hang on a lock or a remote call).

The relay's own handling (:mod:`pgoutbox.shutdown`) only logs a second signal: its batches
are bounded. A callback is not, so the consumer keeps django-outbox-pattern's forced exit.
The message in hand is then neither acked nor committed: the broker delivers it again.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

logger = logging.getLogger(__name__)

FORCED_EXIT_STATUS = 1


def stop_on_signals(stop: threading.Event) -> None:
    """Make SIGTERM and SIGINT set ``stop``, and a second one end the process with status 1
    (``os._exit``: no callback, ``finally`` or atexit runs). Main thread only."""

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            logger.error("%s received again; exiting at once, the message in hand comes back", name)
            logging.shutdown()  # flush the handlers: nothing else runs after this
            os._exit(FORCED_EXIT_STATUS)
        logger.info("%s received; finishing the message in hand (send it again to exit now)", name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
