"""What a Django task (pgoutbox.tasks, Django >= 6.0) is said to be, by get_result(), the
pgoutbox_task_state view and outbox_status, around its lease: one answer everywhere, with an
error for each attempt its relay lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.tasks import TaskResultStatus, task_backends

from pgoutbox.db import connection_params
from pgoutbox.models import OutboxTaskResult
from pgoutbox.relay.store import CallStore
from pgoutbox.status import read_status
from pgoutbox.transports.memory import MemoryTransport
from tests.app import tasks
from tests.integration.test_tasks import killed_mid_run
from tests.support.function_events import pgoutbox_settings, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("runs")]


@pytest.fixture
def relay(relay_thread: Callable[..., Any]) -> Callable[..., Any]:
    def start(**kwargs: Any) -> Any:
        kwargs.setdefault("poll_interval", 60.0)
        return relay_thread(transport=MemoryTransport(), **kwargs)

    return start


def view_status(result_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM pgoutbox_task_state_v2 WHERE id = %s", [result_id])
        (status,) = cursor.fetchone()
    return str(status)


def states(result_id: str) -> tuple[str, str, dict[str, int]]:
    """The task's state as get_result(), the view and outbox_status give it."""
    return (
        task_backends["default"].get_result(result_id).status,
        view_status(result_id),
        read_status(using="default").tasks,
    )


def lease_and_vanish(lease: float) -> None:
    """Lease the due calls as a relay would, then close the session: a relay killed before the
    leased tasks finished."""
    with psycopg.connect(**connection_params("default"), autocommit=True) as conn:
        assert CallStore(conn).lease_calls([], 10, lease)


def test_a_task_running_past_its_lease_is_running_everywhere(relay):
    # Its relay holds the call row's lock for the whole run: no other relay can take it.
    with pgoutbox_settings(CALL_LEASE=0.2):
        relay()
        tasks.GATE.clear()
        result = tasks.waits_for_gate.enqueue()
        try:
            wait_until(lambda: tasks.waits_for_gate.get_result(result.id).status == "RUNNING")
            time.sleep(0.5)  # past the lease
            assert states(result.id) == ("RUNNING", "RUNNING", {"RUNNING": 1})
        finally:
            tasks.GATE.set()
        done = wait_until(
            lambda: (r := tasks.waits_for_gate.get_result(result.id)).is_finished and r
        )
        assert (done.status, done.attempts, done.errors) == ("SUCCESSFUL", 1, [])


def test_a_task_leased_behind_a_long_one_and_past_its_lease_is_ready_everywhere(relay):
    # Leased with the long task but not started: once its lease ran out another relay may take
    # it, so it is READY (its leasing relay's session being alive does not make it RUNNING).
    with pgoutbox_settings(CALL_LEASE=0.2):
        tasks.GATE.clear()
        with transaction.atomic():
            long = tasks.waits_for_gate.using(priority=10).enqueue()
            behind = tasks.add.enqueue(1, 2)
        relay()
        try:
            wait_until(lambda: tasks.waits_for_gate.get_result(long.id).status == "RUNNING")
            time.sleep(0.5)
            assert states(behind.id)[:2] == ("READY", "READY")
            assert read_status(using="default").tasks == {"READY": 1, "RUNNING": 1}
        finally:
            tasks.GATE.set()
    done = wait_until(lambda: (r := tasks.add.get_result(behind.id)).is_finished and r)
    assert done.status == TaskResultStatus.SUCCESSFUL


def test_a_task_whose_relay_vanished_is_ready_with_the_lost_attempt_as_an_error(relay):
    result = tasks.add.enqueue(2, 3)
    lease_and_vanish(lease=0.2)
    time.sleep(0.4)
    assert states(result.id) == ("READY", "READY", {"READY": 1})
    lost = tasks.add.get_result(result.id)
    assert lost.attempts == 1
    assert [e.exception_class_path for e in lost.errors] == ["pgoutbox.errors.TaskAbandoned"]
    assert "stopped before it finished" in lost.errors[0].traceback

    relay()
    done = wait_until(lambda: (r := tasks.add.get_result(result.id)).is_finished and r)
    assert done.status == TaskResultStatus.SUCCESSFUL and done.return_value == 5
    assert done.attempts == 2
    assert [e.exception_class_path for e in done.errors] == ["pgoutbox.errors.TaskAbandoned"]
    assert "stopped before it finished" in done.errors[0].traceback


def test_a_task_whose_session_was_terminated_is_ready_with_why_during_its_backoff(relay):
    # The relay records the lost transaction on its own connection: the result says so too
    # (it showed RUNNING, with no error, until its backoff ran out).
    with pgoutbox_settings(RETRY_BACKOFF_BASE=30, RETRY_BACKOFF_MAX=30):
        relay()
        result = killed_mid_run()
        backend = task_backends["default"]
        lost = wait_until(lambda: (r := backend.get_result(result.id)).errors and r)
        assert states(result.id) == ("READY", "READY", {"READY": 1})
    assert lost.attempts == 1
    [error] = lost.errors
    assert error.exception_class_path == "pgoutbox.errors.TaskAbandoned"
    assert "transaction lost" in error.traceback


def test_a_task_lost_with_its_relay_every_time_is_failed_with_one_error_per_attempt(relay):
    with pgoutbox_settings(MAX_ATTEMPTS=2):
        result = tasks.add.enqueue(1, 1)
        for _ in range(2):
            lease_and_vanish(lease=0.1)
            time.sleep(0.2)
        relay()
        backend = task_backends["default"]
        dead = wait_until(lambda: (r := backend.get_result(result.id)).is_finished and r)
    assert dead.status == TaskResultStatus.FAILED
    assert dead.attempts == len(dead.errors) == 3  # two lost, then the relay gave up on it
    assert "stopped before it finished" in dead.errors[0].traceback
    assert "leased 2 times without an outcome" in dead.errors[2].traceback
    assert states(result.id)[1:] == ("FAILED", {"FAILED": 1})


def test_the_admin_lists_a_task_whose_relay_vanished_as_ready(admin_client):
    from django.urls import reverse

    result = tasks.add.enqueue(2, 3)
    lease_and_vanish(lease=0.1)
    time.sleep(0.3)
    assert OutboxTaskResult.objects.get().status == "RUNNING"  # the row's own status
    page = admin_client.get(reverse("admin:pgoutbox_outboxtaskresult_changelist"))
    [shown] = page.context["cl"].result_list
    assert shown.state == "READY"
    assert '<td class="field-state">READY</td>' in page.content.decode()
    detail = admin_client.get(
        reverse("admin:pgoutbox_outboxtaskresult_change", args=[result.id])
    ).content.decode()
    assert '<div class="readonly">READY</div>' in detail
