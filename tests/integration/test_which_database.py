"""One answer to "which database": producers write on their transaction's alias; the relay's
``PGOUTBOX['DATABASE']`` and ``--database`` only say where relays connect."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import override_settings

import pgoutbox
from pgoutbox.models import OutboxEvent
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox
from tests.support.function_events import pgoutbox_settings, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "direct"]),
    pytest.mark.usefixtures("runs"),
]


class Rollback(Exception):
    pass


def test_a_call_rolled_back_on_the_callers_alias_never_runs_whatever_database_says(
    relay_thread,
):
    """Issue: with DATABASE on another alias, the call was written there in autocommit and its
    on-commit hook fired at once, so a call inside a rolled-back atomic() still ran."""
    with pgoutbox_settings(DATABASE="direct", PUBLISH_ON_COMMIT_LEASE=0.05):
        relay_thread(transport=MemoryTransport(), poll_interval=0.1)
        with pytest.raises(Rollback), transaction.atomic():
            outbox.notify("rolled back")
            raise Rollback
        outbox.notify("committed")
        wait_until(lambda: outbox.runs("notify") and not OutboxEvent.objects.exists())
    assert [run.args for run in outbox.runs("notify")] == [("committed",)]


def test_send_writes_on_the_alias_the_router_gives(transactional_db):
    with override_settings(DATABASE_ROUTERS=["tests.app.routers.OutboxOnDirect"]):
        with pytest.raises(Rollback), transaction.atomic(using="direct"):
            pgoutbox.send("/queue/pgoutbox-router", "rolled back with the caller")
            outbox.notify("rolled back too")
            raise Rollback
        assert not OutboxEvent.objects.exists()
        with transaction.atomic(using="direct"):
            pgoutbox.send("/queue/pgoutbox-router", "committed with the caller")
        assert OutboxEvent.objects.using("default").count() == 1


def test_send_writes_on_the_alias_it_is_given(transactional_db):
    with pytest.raises(Rollback), transaction.atomic(using="direct"):
        pgoutbox.send("/queue/pgoutbox-using", "rolled back", using="direct")
        raise Rollback
    assert not OutboxEvent.objects.exists()


def test_the_relay_serves_the_database_it_is_told(transactional_db):
    pgoutbox.send("/queue/pgoutbox-database-option", "relayed through the direct alias")
    with override_settings(PGOUTBOX={"TRANSPORT": "pgoutbox.transports.memory.MemoryTransport"}):
        out = io.StringIO()
        call_command("events_relay", database=["direct"], stdout=out)
        assert out.getvalue().strip() == "relayed 1 events"
        with pytest.raises(
            CommandError, match=r"--database 'elsewhere' is not an alias of settings\.DATABASES"
        ):
            call_command("events_relay", database="elsewhere", stdout=io.StringIO())
    assert not OutboxEvent.objects.exists()
