"""The libraries pgoutbox replaces, measured beside it: django-jaiminho and django-outbox-pattern.

They are installed from PyPI into a virtualenv of their own, outside the repository
(:data:`VENV`, created on first use and reused while its requirements are unchanged), and run
as their READMEs say, on a scratch database of their own, against the same RabbitMQ queue kind
and the same consumer process as pgoutbox:

- ``jaiminho-publish-on-commit``: ``@save_to_outbox`` with ``PUBLISH_STRATEGY =
  'publish-on-commit'``: the function runs after COMMIT in the producer, no row is kept
  (nothing durable between commit and broker); no relay process.
- ``jaiminho-keep-order``: ``PUBLISH_STRATEGY = 'keep-order'``, every call stored, relayed by
  ``manage.py events_relay --run-in-loop --loop-interval 0.1``.
- ``outbox-pattern``: ``Published`` rows, relayed by ``manage.py publish``.

The decorated function sends with stomp.py, a receipt per message, ``persistent: true``
(:mod:`benchmarks.peer_app.events`).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from psycopg import sql

from benchmarks.e2e import analyze, read_consumer, start_consumer
from benchmarks.infra import ROOT, ProcessMonitor, Run, pg_connect, stop_process

VENV = Path(tempfile.gettempdir()) / "pgoutbox-bench-peers"
REQUIREMENTS = [
    "django-jaiminho==2.2.1",
    "django-outbox-pattern==3.2.1",
    "Django>=5.2,<5.3",
    "psycopg[binary]>=3.1",
    "stomp.py>=8.1",
]
PEERS = ("jaiminho-publish-on-commit", "jaiminho-keep-order", "outbox-pattern")


def ensure_venv() -> Path:
    """Return the peers' interpreter, creating their virtualenv unless it has these
    requirements already."""
    python = VENV / "bin" / "python"
    marker = VENV / "pgoutbox-bench-requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    subprocess.run(["python3", "-m", "venv", str(VENV)], check=True, timeout=300)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True, timeout=900
    )
    marker.write_text(wanted)
    return python


class PeerDatabase:
    """The peers' scratch database (dropped on exit), migrated by their own ``migrate``."""

    def __init__(self, run: Run, python: Path) -> None:
        self.run = run
        self.python = python
        self.name = f"{run.database}_peers"

    def __enter__(self) -> PeerDatabase:
        with pg_connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self.manage(["migrate", "--no-input", "-v", "0"])
        return self

    def __exit__(self, *exc: object) -> None:
        with pg_connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )

    def env(self, strategy: str = "publish-on-commit") -> dict[str, str]:
        env = self.run.env(PEER_DB_NAME=self.name, PEER_JAIMINHO_STRATEGY=strategy)
        env["DJANGO_SETTINGS_MODULE"] = "benchmarks.peer_app.settings"
        return env

    def manage(self, args: list[str]) -> None:
        result = subprocess.run(
            [str(self.python), "-m", "django", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"peers' manage.py {' '.join(args)} failed:\n{result.stderr}")

    def truncate(self) -> None:
        with pg_connect(self.name) as conn:
            conn.execute("TRUNCATE jaiminho_event, published")


def peer_run(
    run: Run, db: PeerDatabase, *, peer: str, label: str, count: int, rate: float
) -> dict[str, Any]:
    """One steady run of ``peer``: its relay (if it has one), the consumer, then its producer."""
    db.truncate()
    strategy = "keep-order" if peer == "jaiminho-keep-order" else "publish-on-commit"
    env = db.env(strategy)
    python = str(db.python)
    destination = run.queue()
    relay = None
    if peer == "jaiminho-keep-order":
        args = ["-m", "django", "events_relay", "--run-in-loop", "--loop-interval", "0.1"]
        relay = run.start(args, log=f"{label}-relay.log", env=env, python=python)
        run.wait_for_log(f"{label}-relay.log", "loop_interval", relay, timeout=60)
    elif peer == "outbox-pattern":
        relay = run.start(
            ["-m", "django", "publish"], log=f"{label}-relay.log", env=env, python=python
        )
    expected = count / rate
    consumer = start_consumer(run, destination, count, f"{label}-consumer", timeout=expected + 120)
    out = run.tmp / f"{label}-producer.json"
    kind = "jaiminho" if peer.startswith("jaiminho") else "outbox-pattern"
    args = ["-m", "benchmarks.peer_app.producer", "--peer", kind, "--destination", destination]
    args += ["--count", str(count), "--rate", str(rate), "--warmup", "20", "--out", str(out)]
    monitor = ProcessMonitor(relay.pid) if relay is not None else None
    cpu_before = monitor.cpu_seconds() if monitor else 0.0
    producer = run.start(args, log=f"{label}-producer.log", env=env, python=python)
    producer.wait(timeout=expected + 180)
    if producer.returncode != 0:
        raise RuntimeError(run.log_text(f"{label}-producer.log"))
    consumer.wait(timeout=expected + 180)
    cpu = monitor.cpu_seconds() - cpu_before if monitor else None
    if relay is not None:
        stop_process(relay)
    result = analyze(json.loads(out.read_text()), read_consumer(run, f"{label}-consumer"))
    result.pop("cdf_ms", None)
    return {
        "label": label,
        "peer": peer,
        "settings": {"rate_tx_per_s": rate, "stamped": "before COMMIT", "receipts": True},
        **result,
        "relay_cpu_s": round(cpu, 3) if cpu is not None else None,
        "relay_cpu_s_per_1000_events": round(cpu / count * 1000, 4) if cpu is not None else None,
    }
