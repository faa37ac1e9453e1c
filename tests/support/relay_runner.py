"""Run pgoutbox's relay in a thread (integration) or as ``manage.py`` processes (acceptance)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

from django.db import connection

from pgoutbox.relay.engine import Relay

ROOT = Path(__file__).resolve().parents[2]


class StoppableThread:
    """Runs ``run(stop_event)`` of a relay or a subscriber in a background thread until
    :meth:`stop` sets the event and joins it."""

    def __init__(self, run: Callable[[threading.Event], None]) -> None:
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=run, args=(self.stop_event,), daemon=True)

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"{type(self).__name__} did not stop in time")


class RelayThread(StoppableThread):
    def __init__(self, relay: Relay) -> None:
        super().__init__(relay.run)
        self.relay = relay


def manage_env(**extra: str) -> dict[str, str]:
    """Environment for a ``manage.py`` subprocess pointed at the current test database."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
        DJANGO_SETTINGS_MODULE="tests.settings",
        PGOUTBOX_TEST_DB_NAME=connection.settings_dict["NAME"],
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def start_command(
    args: Sequence[str], *, env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python -m django <args>`` against the test database."""
    command = [sys.executable, "-m", "django", *args]
    if log is None:
        return subprocess.Popen(
            command, env=env or manage_env(), cwd=ROOT, stdout=subprocess.DEVNULL
        )
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            command, env=env or manage_env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def run_command(
    args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m django <args>`` to completion and return its output."""
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env or manage_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def terminate(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM a process and return its exit code (killing it if it does not exit in time)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    return process.returncode
