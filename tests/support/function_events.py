"""Helpers for function-event tests: waiting, settings overrides, a log of jaiminho's signals."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.test import override_settings

from pgoutbox import signals

SIGNAL_NAMES = (
    "event_published",
    "event_failed_to_publish",
    "event_permanently_failed",
    "event_published_by_events_relay",
    "event_failed_to_publish_by_events_relay",
    "event_permanently_failed_by_events_relay",
)


def run_producers(produce: Callable[[int], None], count: int, timeout: float = 60.0) -> None:
    """Run ``produce(n)`` for n in ``range(count)`` in threads at once, each closing its Django
    connection at the end; re-raise the first error any of them raised."""
    from django.db import connection

    errors: list[BaseException] = []

    def run(producer: int) -> None:
        try:
            produce(producer)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    """Return the first truthy value of ``predicate()``; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


@contextmanager
def pgoutbox_settings(**overrides: Any) -> Iterator[None]:
    """``override_settings`` of some ``PGOUTBOX`` keys, the test settings' others kept."""
    with override_settings(PGOUTBOX={**settings.PGOUTBOX, **overrides}):
        yield


@dataclass(frozen=True)
class Fired:
    signal: str
    sender: Any
    event_payload: Any
    kwargs: frozenset[str]


class SignalLog:
    """Records every send of the six signals: name, sender, event_payload and kwarg names."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fired: list[Fired] = []
        self._receivers: list[tuple[Any, Callable[..., None]]] = []

    def connect(self) -> SignalLog:
        for name in SIGNAL_NAMES:
            signal = getattr(signals, name)

            def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
                with self._lock:
                    self.fired.append(
                        Fired(_name, sender, kwargs.get("event_payload"), frozenset(kwargs))
                    )

            signal.connect(receiver, weak=False)
            self._receivers.append((signal, receiver))
        return self

    def disconnect(self) -> None:
        for signal, receiver in self._receivers:
            signal.disconnect(receiver)

    def names(self) -> list[str]:
        with self._lock:
            return [f.signal for f in self.fired]

    def of(self, name: str) -> list[Fired]:
        with self._lock:
            return [f for f in self.fired if f.signal == name]
