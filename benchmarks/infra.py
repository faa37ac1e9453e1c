"""What every benchmark needs: a scratch database, child processes that die with us, results.

Everything a run creates is registered on a :class:`Run` (a context manager) and undone when it
exits, on success, on an exception and on Ctrl-C or SIGTERM (turned into KeyboardInterrupt).
Children also get ``PR_SET_PDEATHSIG``, so a SIGKILLed orchestrator does not leave them behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import psutil
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("PGPORT", "5432")),
    "user": os.environ.get("PGUSER", "postgres"),
    "password": os.environ.get("PGPASSWORD", ""),
}
STOMP = (os.environ.get("STOMP_HOST", "127.0.0.1"), int(os.environ.get("STOMP_PORT", "61613")))


def pg_connect(dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(dbname=dbname, autocommit=True, **PG, **kwargs)


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@dataclass
class Run:
    """One benchmark invocation: its scratch database, its children, its temp dir."""

    name: str
    database: str = ""
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgoutbox-bench-")))
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    subjects: int = 0
    started: float = field(default_factory=time.time)

    def __enter__(self) -> Run:
        signal.signal(signal.SIGTERM, _raise_interrupt)
        self.database = f"bench_{self.name}_{os.getpid()}_{secrets.token_hex(3)}"
        with pg_connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        self.manage(["migrate", "--no-input", "-v", "0"], timeout=120)
        return self

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self.processes):
            stop_process(process)
        with contextlib.suppress(Exception), pg_connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.database)
                )
            )
        for queue in self.queues:
            subprocess.run(
                ["rabbitmqctl", "delete_queue", queue], capture_output=True, timeout=30, check=False
            )
        for path in sorted(self.tmp.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        self.tmp.rmdir()

    # -- children ----------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
            DJANGO_SETTINGS_MODULE="benchmarks.settings",
            PGOUTBOX_TEST_DB_NAME=self.database,
            PYTHONUNBUFFERED="1",
            **extra,
        )
        return env

    def start(
        self,
        args: Sequence[str],
        *,
        log: str,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> subprocess.Popen[bytes]:
        """Start ``python <args>`` with output to ``tmp/<log>``; stopped when the run ends."""
        out = open(self.tmp / log, "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [python, *args],
            cwd=ROOT,
            env=env or self.env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            preexec_fn=_die_with_parent,
        )
        out.close()
        self.processes.append(process)
        return process

    def manage(self, args: Sequence[str], *, timeout: float = 60, **env: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=ROOT,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def log_text(self, log: str) -> str:
        path = self.tmp / log
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_log(
        self, log: str, text: str, process: subprocess.Popen[bytes], timeout: float
    ) -> float:
        """Wait until ``text`` appears in ``tmp/<log>``; return the time it was seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text(log):
                return time.time()
            if process.poll() is not None:
                raise RuntimeError(
                    f"{log}: process exited {process.returncode}:\n{self.log_text(log)}"
                )
            time.sleep(0.005)
        raise TimeoutError(f"{log}: no {text!r} within {timeout}s:\n{self.log_text(log)[-2000:]}")

    def queue(self) -> str:
        """A fresh durable RabbitMQ queue destination, deleted when the run ends."""
        name = f"pgoutbox-bench-{self.database}-{len(self.queues)}"
        self.queues.append(name)
        return f"/queue/{name}"

    def destination(self, sink: str = "stomp") -> str:
        """A fresh destination: a RabbitMQ queue, or for ``jetstream`` a subject that the
        consumer's own stream captures (the consumer deletes the stream when it ends)."""
        if sink == "jetstream":
            self.subjects += 1
            return f"/pgoutbox-bench/{self.database}/{self.subjects}"
        return self.queue()

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with pg_connect(self.database) as conn:
            cur = conn.execute(query, params)  # type: ignore[call-overload]
            return cur.fetchall() if cur.description else []


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int | None:
    """SIGTERM, wait, SIGKILL if needed; return the exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class ProcessMonitor:
    """Samples a child's RSS (and an optional probe) every ``interval`` in a thread."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []  # (time, rss bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcessMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.samples.append((time.time(), self.process.memory_info().rss))
            self._stop.wait(self.interval)

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def peak_rss(self, since: float = 0.0) -> int:
        return max((rss for t, rss in self.samples if t >= since), default=0)


# -- results -------------------------------------------------------------------------------


def percentiles(values_ms: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/max (nearest-rank) of latencies in milliseconds, rounded to µs."""
    if not values_ms:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values_ms)

    def rank(p: float) -> float:
        return round(
            ordered[min(len(ordered) - 1, max(0, int(p * len(ordered) + 0.999999) - 1))], 3
        )

    return {
        "p50_ms": rank(0.50),
        "p90_ms": rank(0.90),
        "p99_ms": rank(0.99),
        "max_ms": round(ordered[-1], 3),
    }


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


def machine() -> dict[str, Any]:
    """What the numbers were measured on: hardware, load, versions."""
    versions = {}
    for package in ("Django", "psycopg", "stomp.py", "psutil"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    with pg_connect() as conn:
        row = conn.execute("SHOW server_version").fetchone()
        pg_settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                [["synchronous_commit", "shared_buffers", "max_connections", "wal_level", "fsync"]],
            ).fetchall()
        )
    rabbit = subprocess.run(
        ["rabbitmqctl", "version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "loadavg": os.getloadavg(),
        "python": platform.python_version(),
        "postgresql": row[0] if row else None,
        "postgresql_settings": pg_settings,
        "rabbitmq": rabbit or None,
        "packages": versions,
        "git_commit": commit + ("-dirty" if dirty else ""),
    }


def write_results(key: str, payload: dict[str, Any]) -> Path:
    """Write ``results/<key>-<UTC timestamp>.json``; older results of the same key are removed
    (git keeps the history, the folder keeps the latest)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    for old in [*RESULTS.glob(f"{key}-2*.json"), *RESULTS.glob(f"{key}-2*.png")]:
        old.unlink()
    path = RESULTS / f"{key}-{stamp}.json"
    document = {"command": key, "finished_at": stamp, **payload}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


@contextlib.contextmanager
def timer() -> Iterator[dict[str, float]]:
    box = {"start": time.time()}
    yield box
    box["end"] = time.time()
    box["seconds"] = box["end"] - box["start"]
