"""The relay's round trips to PostgreSQL on its hot paths (counted from libpq's trace, not
timed): each one costs the listener's CPU and every event's latency."""

from __future__ import annotations

import pytest
from psycopg import pq

import pgoutbox
from pgoutbox import db
from pgoutbox.conf import get_settings
from pgoutbox.models import OutboxEvent
from pgoutbox.policy import Failure
from pgoutbox.relay.store import MessageStore
from tests.support.round_trips import round_trips

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def store():
    store = MessageStore(db.connect(db.connection_params("default"), autocommit=False))
    yield store
    store.conn.close()


def test_a_confirmed_batch_is_deleted_and_committed_in_one_round_trip(store):
    for n in range(3):
        pgoutbox.send("/queue/x", f"body {n}")
    claim = store.claim_batch([], 10, get_settings().max_batch_bytes)
    assert len(claim.rows) == 3
    with round_trips(store.conn) as counted:
        store.finish_batch([row.id for row in claim.rows], [])
    assert counted == [1]
    assert store.conn.info.transaction_status == pq.TransactionStatus.IDLE
    assert not OutboxEvent.objects.exists()


def test_a_batch_with_failures_still_deletes_records_and_commits(store):
    kept = pgoutbox.send("/queue/x", "fails")
    pgoutbox.send("/queue/x", "confirmed")
    claim = store.claim_batch([], 10, get_settings().max_batch_bytes)
    failing = next(r.id for r in claim.rows if bytes(r.body) == b"fails")
    confirmed = [r.id for r in claim.rows if r.id != failing]
    store.finish_batch(confirmed, [Failure(failing, "broker rejected: no", delay=60.0)])
    assert store.conn.info.transaction_status == pq.TransactionStatus.IDLE
    [row] = OutboxEvent.objects.all()
    assert (row.message_id, row.attempts, row.last_error) == (kept, 1, "broker rejected: no")
