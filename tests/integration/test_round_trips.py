"""The relay's round trips to PostgreSQL on its hot paths (counted from libpq's trace, not
timed): each one costs the listener's CPU and every event's latency."""

from __future__ import annotations

import pytest
from psycopg import pq

import pgoutbox
from pgoutbox import db
from pgoutbox.conf import get_settings
from pgoutbox.errors import DatabaseError
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


def test_a_batch_is_claimed_with_its_transaction_begun_in_one_round_trip(store):
    pgoutbox.send("/queue/x", "body")
    with round_trips(store.conn) as counted:
        claim = store.claim_batch([], 10, get_settings().max_batch_bytes)
    assert counted == [1]
    assert [bytes(row.body) for row in claim.rows] == [b"body"]
    assert store.conn.info.transaction_status == pq.TransactionStatus.INTRANS
    store.abandon_batch()
    assert store.conn.info.transaction_status == pq.TransactionStatus.IDLE
    assert OutboxEvent.objects.get().attempts == 0


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


def test_the_claim_stays_prepared_after_failures_and_an_empty_claim(store):
    """The claim is the session's own prepared statement: a ROLLBACK (an empty claim) after
    the statements of failing batches, run often enough for a driver to prepare them, must
    not deallocate it."""
    settings = get_settings()
    for round_ in range(8):
        pgoutbox.send("/queue/x", f"body {round_}")
        [row] = store.claim_batch([], 10, settings.max_batch_bytes).rows
        store.finish_batch([], [Failure(row.id, "broker rejected: no", delay=0.0, dead=True)])
    assert store.claim_batch([], 10, settings.max_batch_bytes).rows == []
    store.abandon_batch()
    pgoutbox.send("/queue/x", "after the rollback")
    [row] = store.claim_batch([], 10, settings.max_batch_bytes).rows
    assert bytes(row.body) == b"after the rollback"
    store.abandon_batch()


def test_a_session_that_lost_its_prepared_claim_is_told_it_goes_through_a_pooler(store):
    # Through PgBouncer in transaction mode, the claim may reach a server session where it was
    # never prepared: what that looks like, made certain here by deallocating it.
    pgoutbox.send("/queue/x", "body")
    store.conn.execute("DEALLOCATE pgoutbox_claim_batch")
    with pytest.raises(DatabaseError, match=r"RELAY_CONNECTIONS"):
        store.claim_batch([], 10, get_settings().max_batch_bytes)
    store.abandon_batch()
    assert OutboxEvent.objects.get().attempts == 0  # nothing claimed, nothing counted
