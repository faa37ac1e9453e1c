"""A relay process killed in the middle of a Django task (pgoutbox.tasks): the task runs again
after its lease, once, and its result says so."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.tasks import TaskResultStatus

from pgoutbox.models import OutboxEvent
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox, tasks
from tests.support.function_events import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("runs")]


def test_a_task_whose_relay_was_killed_runs_again_after_the_lease(
    relay_process, relay_thread, tmp_path
):
    marker = tmp_path / "killed-once"
    listener = relay_process("outbox_listen", overrides={"CALL_LEASE": 1})
    listener.wait_for_output("relay connected")
    with transaction.atomic():
        result = tasks.killed_once.enqueue(str(marker))
    wait_until(lambda: not listener.running(), timeout=15)  # the task SIGKILLed it
    assert marker.exists()
    leased = tasks.killed_once.get_result(result.id)
    assert leased.status in {TaskResultStatus.RUNNING, TaskResultStatus.READY}
    assert leased.attempts == 1

    relay_thread(transport=MemoryTransport(), poll_interval=0.1)
    done = wait_until(
        lambda: (r := tasks.killed_once.get_result(result.id)).is_finished and r, timeout=15
    )
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == "survived"
    assert done.attempts == 2
    assert len(outbox.runs("killed_once")) == 1  # this process's run; the first died with its relay
    assert not OutboxEvent.objects.exists()
