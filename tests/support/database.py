"""The test database seen from outside Django: plain-SQL producers (as a non-Django service
would write), the relay's sessions in ``pg_stat_activity``, and ``pg_terminate_backend``."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from django.db import connection

from pgoutbox import db
from tests.support.ledger import Ledger

RELAY_APPLICATION_NAME = "pgoutbox"  # what pgoutbox.db gives the relay's own connections

# A row per event, numbered from %(first)s: {"seq": n} as the body, the default headers.
_INSERT_EVENTS = """
INSERT INTO pgoutbox_event (stream, destination, body)
SELECT %(stream)s, %(destination)s, convert_to(json_build_object('seq', g)::text, 'UTF8')
FROM generate_series(%(first)s::bigint, %(first)s::bigint + %(count)s - 1) AS g
RETURNING message_id::text
"""


def current_db_name() -> str:
    return str(connection.settings_dict["NAME"])


def connect(
    *, autocommit: bool = True, application_name: str = "pgoutbox-tests"
) -> psycopg.Connection[Any]:
    """A psycopg connection to the test database that the relay's queries never match."""
    params = db.connection_params("default")
    params["application_name"] = application_name
    return psycopg.connect(**params, autocommit=autocommit)


def relay_backends(conn: psycopg.Connection[Any]) -> list[tuple[int, str]]:
    """``(pid, last query)`` of every relay session on the test database."""
    rows = conn.execute(
        "SELECT pid, query FROM pg_stat_activity WHERE application_name = %s AND datname = %s"
        " ORDER BY pid",
        (RELAY_APPLICATION_NAME, current_db_name()),
    ).fetchall()
    return [(pid, query) for pid, query in rows]


def listen_backend(conn: psycopg.Connection[Any]) -> int | None:
    """Pid of the one relay's LISTEN session: it opens that one first, then its claim
    session (LISTEN before drain), so it is the older of the two."""
    row = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = %s"
        " ORDER BY backend_start, pid LIMIT 1",
        (RELAY_APPLICATION_NAME, current_db_name()),
    ).fetchone()
    return int(row[0]) if row else None


def terminate(conn: psycopg.Connection[Any], pids: list[int]) -> int:
    """``pg_terminate_backend`` each pid; return how many were terminated."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM unnest(%s::int[]) AS pid",
        (pids,),
    ).fetchone()
    return int(row[0]) if row else 0


# Sessions of one outbox_listen: LISTEN, the message lane's claims, the calls lane's leases.
# events_relay has no LISTEN session.
LISTENER_SESSIONS = 3
POLLER_SESSIONS = 2


def wait_for_backends(
    conn: psycopg.Connection[Any], count: int, *, timeout: float = 15.0
) -> list[tuple[int, str]]:
    """Wait until exactly ``count`` relay sessions are connected; return them."""
    deadline = time.monotonic() + timeout
    while True:
        backends = relay_backends(conn)
        if len(backends) == count or time.monotonic() > deadline:
            return backends
        time.sleep(0.02)


def event_status(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows of ``pgoutbox_event`` per status."""
    rows = conn.execute("SELECT status, count(*) FROM pgoutbox_event GROUP BY status").fetchall()
    return {status: int(n) for status, n in rows}


class SqlProducer:
    """Inserts events with plain SQL on its own connection and records committed ids."""

    def __init__(self, ledger: Ledger, destination: str) -> None:
        self.ledger = ledger
        self.destination = destination
        self.conn = connect(autocommit=False)
        self._seq = 0

    def insert(self, count: int, *, stream: str = "", notify: bool = True) -> list[str]:
        """Commit ``count`` events in one transaction; return their message ids."""
        with self.conn.cursor() as cur:
            if not notify:
                cur.execute("SET LOCAL pgoutbox.notify = 'off'")
            cur.execute(
                _INSERT_EVENTS,
                {
                    "stream": stream,
                    "destination": self.destination,
                    "first": self._seq,
                    "count": count,
                },
            )
            ids = [row[0] for row in cur.fetchall()]
        self.conn.commit()
        self._seq += count
        self.ledger.record(ids)
        return ids

    def close(self) -> None:
        self.conn.close()


class ProducerThread:
    """Commits ``total`` events, ``per_transaction`` at a time, one transaction every
    ``interval`` seconds, in a background thread (load while a fault is injected)."""

    def __init__(
        self,
        ledger: Ledger,
        destination: str,
        *,
        total: int,
        per_transaction: int,
        interval: float,
    ) -> None:
        self.ledger = ledger
        self.destination = destination
        self.total = total
        self.per_transaction = per_transaction
        self.interval = interval
        self.error: BaseException | None = None
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ProducerThread:
        self.thread.start()
        return self

    def _run(self) -> None:
        producer = SqlProducer(self.ledger, self.destination)
        try:
            written = 0
            while written < self.total and not self.stop_event.is_set():
                written += len(producer.insert(min(self.per_transaction, self.total - written)))
                self.stop_event.wait(self.interval)
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            producer.close()

    def join(self, timeout: float = 120.0) -> None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.stop_event.set()
            self.thread.join(10)
            raise AssertionError("producer did not finish in time")
        if self.error is not None:
            raise AssertionError(f"producer failed: {self.error!r}") from self.error

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
