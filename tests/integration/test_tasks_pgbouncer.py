"""Django Tasks enqueued through PgBouncer in transaction mode (Django >= 6.0: see conftest)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox
from tests.support.function_events import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "bouncer", "direct"]),
    pytest.mark.usefixtures("runs", "pgbouncer"),
]


class Rollback(Exception):
    pass


def test_django_tasks_enqueued_through_pgbouncer_run_once_in_order_and_never_when_rolled_back(
    relay_thread,
):
    from django.tasks import TaskResultStatus

    from tests.app import tasks

    pooled = {
        "BACKEND": "pgoutbox.tasks.OutboxTaskBackend",
        "QUEUES": [],
        "OPTIONS": {"DATABASE": "bouncer", "KEEP_ORDER_QUEUES": ["ordered"]},
    }
    with override_settings(TASKS={**settings.TASKS, "pooled": pooled}):
        relay_thread(transport=MemoryTransport(), poll_interval=0.1)
        add = tasks.add.using(backend="pooled")
        step = tasks.ordered_step.using(backend="pooled")
        with pytest.raises(Rollback), transaction.atomic(using="bouncer"):
            add.enqueue(100, 1)
            raise Rollback
        with transaction.atomic(using="bouncer"):
            kept = add.enqueue(2, 3)
        results = [step.enqueue(n) for n in range(10)]  # autocommit through the pooler
        for result in [kept, *results]:
            done = wait_until(
                lambda r=result: (f := r.task.get_backend().get_result(r.id)).is_finished and f
            )
            assert done.status == TaskResultStatus.SUCCESSFUL, done.errors
    assert [run.args for run in outbox.runs("add")] == [(2, 3)]
    assert [run.args for run in outbox.runs("ordered_step")] == [(n,) for n in range(10)]
