"""NotificationListener.wait: one wake-up per arrival, whatever carried the notification in."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from pgoutbox.db import connection_params
from pgoutbox.relay.listener import NotificationListener

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listener():
    conn = psycopg.connect(**connection_params("default"), autocommit=True)
    listener = NotificationListener(conn, ["pgoutbox_test_a", "pgoutbox_test_b"])
    listener.listen()
    yield listener
    conn.close()


@pytest.fixture
def notify():
    conn = psycopg.connect(**connection_params("default"), autocommit=True)
    yield lambda channel: conn.execute("SELECT pg_notify(%s, '')", [channel])
    conn.close()


def test_wait_returns_every_channel_notified_and_then_nothing(listener, notify):
    assert listener.wait(0.05, threading.Event()) == frozenset()
    notify("pgoutbox_test_a")
    notify("pgoutbox_test_b")
    notify("pgoutbox_test_a")
    time.sleep(0.1)
    assert listener.wait(1.0, threading.Event()) == {"pgoutbox_test_a", "pgoutbox_test_b"}
    started = time.monotonic()
    assert listener.wait(0.3, threading.Event()) == frozenset()  # all consumed by one wake-up
    assert time.monotonic() - started >= 0.3


def test_a_notification_arriving_during_a_query_on_the_connection_is_not_lost(listener, notify):
    listener.wait(0.01, threading.Event())
    # The heartbeat and the busy lock run queries on the listener's own connection: what
    # arrives meanwhile is read by psycopg during the query, not by the wait.
    sender = threading.Timer(0.1, notify, ["pgoutbox_test_b"])
    sender.start()
    listener.conn.execute("SELECT pg_sleep(0.4)")
    sender.join()
    started = time.monotonic()
    assert listener.wait(5.0, threading.Event()) == {"pgoutbox_test_b"}
    assert time.monotonic() - started < 0.1  # already there: no wait for another arrival


def test_wait_wakes_as_soon_as_a_notification_arrives(listener, notify):
    sender = threading.Timer(0.2, notify, ["pgoutbox_test_a"])
    sender.start()
    started = time.monotonic()
    assert listener.wait(5.0, threading.Event()) == {"pgoutbox_test_a"}
    assert time.monotonic() - started < 2.0
    sender.join()  # its statement may still be returning: the fixture closes its connection


def test_a_stop_request_ends_the_wait_within_a_slice(listener):
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    assert listener.wait(30.0, stop) == frozenset()
    assert time.monotonic() - started < 1.0


PAST_SELECT = """
import json, os, resource, sys, threading, time
import psycopg
from pgoutbox.relay.listener import NotificationListener

params = json.loads(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
notifier = psycopg.connect(**params, autocommit=True)
while os.open(os.devnull, os.O_RDONLY) < 1100:
    pass
conn = psycopg.connect(**params, autocommit=True)
assert conn.pgconn.socket >= 1024, conn.pgconn.socket
listener = NotificationListener(conn, ["pgoutbox_test_a"])
listener.listen()
assert listener.wait(0.05, threading.Event()) == frozenset()
notifier.execute("SELECT pg_notify('pgoutbox_test_a', '')")
time.sleep(0.1)
print(sorted(listener.wait(5.0, threading.Event())))
"""


def test_wait_works_on_a_socket_numbered_past_select_s_limit():
    # select.select() refuses file descriptors >= FD_SETSIZE (1024); a process holding many
    # files or connections gets its LISTEN connection's socket numbered past it. In a process
    # of its own: taking every free descriptor would disturb this one's other threads.
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("the host allows fewer than 1200 open files")
    params = {k: v for k, v in connection_params("default").items() if v is not None}
    done = subprocess.run(
        [sys.executable, "-c", PAST_SELECT, json.dumps(params, default=str)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['pgoutbox_test_a']"
