"""Django's task_started / task_finished signals (django.tasks.signals), sent by the relay that
runs a pgoutbox task (Django >= 6.0) with the arguments Django's own backends pass."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.dispatch import Signal
from django.tasks import TaskResult, TaskResultStatus, task_backends
from django.tasks.signals import task_finished, task_started

from pgoutbox.models import OutboxEvent, OutboxTaskResult
from pgoutbox.tasks import OutboxTaskBackend
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox, tasks
from tests.support.function_events import pgoutbox_settings, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("runs")]


@pytest.fixture
def relay(relay_thread: Callable[..., Any]) -> Callable[..., Any]:
    def start(**kwargs: Any) -> Any:
        kwargs.setdefault("poll_interval", 0.05)
        return relay_thread(transport=MemoryTransport(), **kwargs)

    return start


@pytest.fixture
def received() -> Iterator[list[tuple[str, Any, TaskResult]]]:
    """(signal name, sender, task result) of every task_started / task_finished sent."""
    seen: list[tuple[str, Any, TaskResult]] = []

    def recorder(name: str) -> Callable[..., None]:
        def receive(sender: Any, task_result: TaskResult, **kwargs: Any) -> None:
            seen.append((name, sender, task_result))

        return receive

    receivers = {task_started: recorder("started"), task_finished: recorder("finished")}
    for signal, receiver in receivers.items():
        signal.connect(receiver)
    yield seen
    for signal, receiver in receivers.items():
        signal.disconnect(receiver)


def finished(result: TaskResult) -> TaskResult:
    backend = task_backends["default"]
    return wait_until(lambda: (r := backend.get_result(result.id)).is_finished and r)


def test_started_then_finished_with_the_results_as_stored(relay, received):
    relay()
    result = tasks.add.enqueue(1, 2)
    done = finished(result)
    wait_until(lambda: len(received) == 2)
    (s_name, s_sender, started), (f_name, f_sender, ended) = received
    assert (s_name, f_name) == ("started", "finished")
    assert s_sender is f_sender is OutboxTaskBackend
    assert started.id == ended.id == result.id
    assert started.status == TaskResultStatus.RUNNING
    assert started.attempts == 1 and started.started_at is not None
    assert started.task.func is tasks.add.func and started.args == [1, 2]
    assert ended.status == TaskResultStatus.SUCCESSFUL and ended.return_value == 3
    assert ended.finished_at == done.finished_at and ended.worker_ids == done.worker_ids


def test_a_retried_task_starts_each_attempt_and_finishes_once(relay, received):
    with pgoutbox_settings(RETRY_BACKOFF_BASE=0.01, RETRY_BACKOFF_MAX=0.05, MAX_ATTEMPTS=3):
        relay()
        finished(tasks.flaky.enqueue(fail_until=1))
        dead = finished(tasks.always_fails.enqueue())
    wait_until(lambda: [name for name, *_ in received].count("finished") == 2)
    flaky = [(n, r.status, r.attempts) for n, _, r in received if r.task.func is tasks.flaky.func]
    assert flaky == [
        ("started", "RUNNING", 1),
        ("started", "RUNNING", 2),
        ("finished", "SUCCESSFUL", 2),
    ]
    [(_, _, failed)] = [(n, s, r) for n, s, r in received if n == "finished" and r.id == dead.id]
    assert failed.status == TaskResultStatus.FAILED
    assert failed.finished_at is not None and len(failed.errors) == 3
    assert failed.errors[-1].exception_class is RuntimeError


@pytest.mark.parametrize("error", [RuntimeError("receiver bug"), SystemExit(2)])
@pytest.mark.parametrize("signal", [task_started, task_finished], ids=["started", "finished"])
def test_a_receiver_that_raises_changes_nothing_of_the_task(relay, signal: Signal, error):
    def broken(**kwargs: Any) -> None:
        raise error

    signal.connect(broken)
    try:
        relay()
        first = finished(tasks.add.enqueue(2, 3))
        second = finished(tasks.add.enqueue(3, 4))  # the relay goes on
    finally:
        signal.disconnect(broken)
    assert (first.status, first.return_value, first.errors) == ("SUCCESSFUL", 5, [])
    assert (second.status, second.attempts) == ("SUCCESSFUL", 1)
    assert [run.args for run in outbox.runs("add")] == [(2, 3), (3, 4)]


def test_a_task_requeued_after_its_result_was_cleaned_still_runs(relay, received):
    with pgoutbox_settings(MAX_ATTEMPTS=1):
        relay()
        failed = finished(tasks.add.enqueue("a", 1))  # str + int: TypeError, dead at once
        assert failed.status == TaskResultStatus.FAILED
        OutboxTaskResult.objects.all().delete()  # as event_cleaner does after the retention
        OutboxEvent.objects.update(args={"args": ["a", "b"], "kwargs": {}})
        call_command("outbox_requeue", "--all", stdout=io.StringIO())
        wait_until(lambda: not OutboxEvent.objects.exists())
    assert [run.args for run in outbox.runs("add")] == [("a", 1), ("a", "b")]
