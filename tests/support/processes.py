"""Relay processes (``outbox_listen``, ``events_relay``) for fault tests: start one with its own
settings, wait until it is connected, SIGKILL or SIGTERM it, read its log, sample its memory,
file descriptors and threads from ``/proc``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.relay_runner import ROOT, manage_env

CONNECTED_LINE = "relay connected"


@dataclass(frozen=True)
class ProcessSample:
    """Resources of a running process, read from ``/proc/<pid>``."""

    rss_bytes: int
    fds: int
    threads: int


def relay_env(
    overrides: Mapping[str, Any] | None = None, *, root_log: str | None = None, **extra: str
) -> dict[str, str]:
    """Environment for a relay subprocess on the current test database, with ``PGOUTBOX``
    keys overridden (see ``tests.support.fault_settings``)."""
    env = manage_env()
    env["DJANGO_SETTINGS_MODULE"] = "tests.support.fault_settings"
    env["PGOUTBOX_OVERRIDES"] = json.dumps(dict(overrides or {}))
    if root_log:
        env["PGOUTBOX_ROOT_LOG"] = root_log
    env.update(extra)
    return env


class RelayProcess:
    """One ``python -m django <command>`` process writing its output to ``log``."""

    def __init__(self, args: Sequence[str], *, env: dict[str, str], log: Path) -> None:
        self.args = list(args)
        self.env = env
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> RelayProcess:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "django", *self.args],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, "not started"
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_output(self, text: str, *, count: int = 1, timeout: float = 15.0) -> None:
        """Wait until ``text`` appears ``count`` times in the log; fail if the process exits."""
        deadline = time.monotonic() + timeout
        while self.output().count(text) < count:
            if not self.running():
                raise AssertionError(f"{self.args[0]} exited early:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged in {timeout}s:\n{self.output()[-3000:]}")
            time.sleep(0.02)

    def wait_connected(self, *, count: int = 1, timeout: float = 15.0) -> None:
        """Wait for the ``count``-th "relay connected" (LISTEN done, claim connection open)."""
        self.wait_for_output(CONNECTED_LINE, count=count, timeout=timeout)

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for the process to exit by itself; return its exit code."""
        assert self.popen is not None
        return self.popen.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no handler runs, no batch is finished, connections just drop."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; return the exit code (SIGKILL and fail if it does not exit)."""
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.args[0]} ignored SIGTERM for {timeout}s") from None
        return self.popen.returncode

    def stop(self) -> None:
        """Teardown: make sure the process is gone and reaped."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def sample(self) -> ProcessSample:
        status = Path(f"/proc/{self.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return ProcessSample(
            rss_bytes=int(fields["VmRSS"].split()[0]) * 1024,
            fds=len(list(Path(f"/proc/{self.pid}/fd").iterdir())),
            threads=int(fields["Threads"]),
        )
