"""``python -m benchmarks tasks``: Django Tasks on pgoutbox's backend against django-tasks-db's
``db_worker`` (its 1 s poll), side by side in one run on one scratch database.

Both run the same task (``benchmarks.task_functions.started_at``, which returns the time it
started) from the same producer (``benchmarks.tasks_producer``), each in its own process with its
own settings: pgoutbox's ``outbox_listen`` in this virtualenv, ``db_worker`` in a scratch
virtualenv outside the repository (created here on first use, from the package registry, with
this run's Django version). Measured: enqueue-commit → task start at a steady rate (one task per
transaction), and the drain of a backlog committed before the worker starts (first start → last
finish).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django

from benchmarks.infra import ROOT, Run, percentiles, stop_process

SCRATCH_VENV = Path(tempfile.gettempdir()) / "pgoutbox-bench-django-tasks-db"


@dataclass(frozen=True)
class Side:
    """One backend: the interpreter, settings and worker command, and where results live."""

    name: str
    python: str
    settings: str
    worker: tuple[str, ...]
    ready_log: str
    table: str
    extra_env: tuple[tuple[str, str], ...] = ()


def scratch_python() -> str:
    """django-tasks-db's interpreter: a virtualenv outside the repository with this run's
    Django, made (or remade) when it lacks either."""
    python = SCRATCH_VENV / "bin" / "python"
    probe = [str(python), "-c", "import django, django_tasks_db; print(django.__version__)"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip() == django.__version__:
            return str(python)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(SCRATCH_VENV)], check=True)
    packages = ["django-tasks-db", f"Django=={django.__version__}", "psycopg[binary]"]
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return str(python)


def sides() -> list[Side]:
    return [
        Side(
            name="pgoutbox",
            python=sys.executable,
            settings="benchmarks.settings",
            worker=("-m", "django", "outbox_listen"),
            ready_log="relay connected",
            table="pgoutbox_task_result",
            extra_env=(("PGOUTBOX_BENCH_TASKS", "1"),),
        ),
        Side(
            name="django-tasks-db",
            python=scratch_python(),
            settings="benchmarks.tasks_db_settings",
            worker=("-m", "django", "db_worker", "--interval", "1", "--no-reload"),
            ready_log="Starting worker",
            table="django_tasks_database_dbtaskresult",
        ),
    ]


def env_of(run: Run, side: Side) -> dict[str, str]:
    return {**run.env(**dict(side.extra_env)), "DJANGO_SETTINGS_MODULE": side.settings}


def produce(run: Run, side: Side, mode: str, count: int, rate: float) -> dict[str, float]:
    out = run.tmp / f"{side.name}-{mode}.json"
    subprocess.run(
        [side.python, "-m", "benchmarks.tasks_producer", mode, str(count), str(rate), str(out)],
        cwd=ROOT,
        env=env_of(run, side),
        check=True,
        timeout=600,
    )
    committed: dict[str, float] = json.loads(out.read_text())
    return committed


def start_worker(run: Run, side: Side, label: str) -> subprocess.Popen[bytes]:
    log = f"{side.name}-{label}.log"
    process = run.start(list(side.worker), log=log, env=env_of(run, side), python=side.python)
    run.wait_for_log(log, side.ready_log, process, timeout=60)
    return process


def finished(run: Run, side: Side, ids: list[str], timeout: float) -> list[tuple[float, float]]:
    """(start, finish) wall-clock times of these tasks once every one succeeded."""
    deadline = time.monotonic() + timeout
    query = (
        f"SELECT (return_value #>> '{{}}')::float8, extract(epoch FROM finished_at)::float8 "
        f"FROM {side.table} WHERE status = 'SUCCESSFUL' AND id = ANY(%s::uuid[])"
    )
    while True:
        rows = run.sql(query, [ids])
        if len(rows) == len(ids):
            return [(float(start), float(end)) for start, end in rows]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{side.name}: {len(rows)} of {len(ids)} tasks done in {timeout}s")
        time.sleep(0.2)


def steady(run: Run, side: Side, count: int, rate: float) -> dict[str, Any]:
    worker = start_worker(run, side, "steady")
    committed = produce(run, side, "steady", count, rate)
    ids = list(committed)
    times = finished(run, side, ids, timeout=300)
    stop_process(worker)
    rows = run.sql(
        f"SELECT id::text, (return_value #>> '{{}}')::float8 FROM {side.table} "
        "WHERE id = ANY(%s::uuid[])",
        [ids],
    )
    latencies = [(float(start) - committed[result_id]) * 1000 for result_id, start in rows]
    assert len(times) == len(latencies) == count
    return {"backend": side.name, "tasks": count, "rate": rate, **percentiles(latencies)}


def backlog(run: Run, side: Side, count: int) -> dict[str, Any]:
    committed = produce(run, side, "backlog", count, 0.0)
    worker = start_worker(run, side, "backlog")
    times = finished(run, side, list(committed), timeout=600)
    stop_process(worker)
    window = max(end for _, end in times) - min(start for start, _ in times)
    return {
        "backend": side.name,
        "tasks": count,
        "seconds": round(window, 3),
        "tasks_per_s": round(count / window, 1),
    }


def run_tasks(count: int, rate: float, backlog_count: int) -> dict[str, Any]:
    with Run("tasks") as run:
        both = sides()
        tasks_db = both[1]
        migrate = [tasks_db.python, "-m", "django", "migrate", "--no-input", "-v", "0"]
        subprocess.run(migrate, cwd=ROOT, env=env_of(run, tasks_db), check=True, timeout=120)
        latency = [steady(run, side, count, rate) for side in both]
        drain = [backlog(run, side, backlog_count) for side in both]
    ours, theirs = latency[0], latency[1]
    return {
        "latency": latency,
        "drain": drain,
        "ratios": {
            "start_p50_theirs_over_ours": round(theirs["p50_ms"] / ours["p50_ms"], 1),
            "start_p99_theirs_over_ours": round(theirs["p99_ms"] / ours["p99_ms"], 1),
            "drain_ours_over_theirs": round(drain[0]["tasks_per_s"] / drain[1]["tasks_per_s"], 1),
        },
        "scratch_virtualenv": os.fspath(SCRATCH_VENV),
    }
