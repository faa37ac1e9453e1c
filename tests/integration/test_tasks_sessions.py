"""A Django task (Django >= 6.0) that changes its session on the relay's Django connection:
it succeeds once, and the next task sees the session as it was (see test_call_sessions.py)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.tasks import task_backends

from pgoutbox.transports.memory import MemoryTransport
from tests.app import tasks
from tests.integration.test_call_sessions import changes, session_now
from tests.support.function_events import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("runs")]
__all__ = ["changes"]  # the fixture


def test_a_task_that_changes_its_session_succeeds_and_leaves_nothing_to_the_next(
    relay_thread, changes
):
    expected = session_now()
    relay_thread(transport=MemoryTransport(), poll_interval=0.05)
    backend = task_backends["default"]
    with transaction.atomic():
        changed = tasks.changes_session.enqueue(changes)
    done = wait_until(lambda: (r := backend.get_result(changed.id)).is_finished and r)
    assert (done.status, done.attempts, done.errors) == ("SUCCESSFUL", 1, [])
    reported = tasks.reports_session.enqueue()
    after = wait_until(lambda: (r := backend.get_result(reported.id)).is_finished and r)
    assert tuple(after.return_value) == expected
