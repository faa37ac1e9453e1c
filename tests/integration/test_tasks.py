"""pgoutbox.tasks.OutboxTaskBackend (Django Tasks, Django >= 6.0) against real PostgreSQL and a
relay's calls lane: transaction semantics, results, retries, defer, priority, bad input."""

from __future__ import annotations

import datetime
import io
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.db import connection, transaction
from django.tasks import TaskResult, TaskResultStatus
from django.tasks.exceptions import InvalidTask, InvalidTaskBackend, TaskResultDoesNotExist
from django.utils import timezone

from pgoutbox import registry
from pgoutbox.errors import SerializationError
from pgoutbox.models import OutboxEvent, OutboxTaskResult
from pgoutbox.producer import ordering
from pgoutbox.sql import query
from pgoutbox.tasks import OutboxTaskBackend, TaskRunner
from pgoutbox.transports.memory import MemoryTransport
from tests.app import outbox, tasks
from tests.app.models import Order
from tests.support.function_events import pgoutbox_settings, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("runs")]

# Long enough that a test passing within it was woken by NOTIFY, not by the poll.
NO_POLL = 60.0


@pytest.fixture
def relay(relay_thread: Callable[..., Any]) -> Callable[..., Any]:
    """Start a relay (memory transport) serving the test database; its calls lane runs tasks."""

    def start(**kwargs: Any) -> Any:
        kwargs.setdefault("poll_interval", NO_POLL)
        return relay_thread(transport=MemoryTransport(), **kwargs)

    return start


@pytest.fixture
def fast_retries() -> Iterator[None]:
    with pgoutbox_settings(RETRY_BACKOFF_BASE=0.01, RETRY_BACKOFF_MAX=0.05, MAX_ATTEMPTS=3):
        yield


def finished(result: TaskResult, timeout: float = 10.0) -> TaskResult:
    """The result once its task finished (SUCCESSFUL or FAILED)."""

    def done() -> TaskResult | None:
        fresh = result.task.get_backend().get_result(result.id)
        return fresh if fresh.is_finished else None

    found: TaskResult = wait_until(done, timeout=timeout)
    return found


def killed_mid_run() -> TaskResult:
    """Enqueue a task and terminate its PostgreSQL session while it runs."""
    tasks.GATE.clear()
    tasks.SESSIONS.clear()
    result = tasks.waits_for_gate_on_its_session.enqueue()
    try:
        wait_until(lambda: tasks.SESSIONS)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [tasks.SESSIONS[0]])
            assert cursor.fetchone() == (True,)
    finally:
        tasks.GATE.set()
    return result


def test_rolled_back_task_never_runs_and_committed_one_runs_once_with_its_result(relay):
    relay()
    with pytest.raises(RuntimeError), transaction.atomic():
        lost = tasks.add.enqueue(1, 2)
        raise RuntimeError("roll back")
    with transaction.atomic():
        kept = tasks.add.enqueue(2, 3)
        assert kept.status == TaskResultStatus.READY
        assert kept.enqueued_at is not None
    result = finished(kept)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert result.args == [2, 3] and result.kwargs == {}
    assert result.attempts == 1 and result.errors == []
    assert result.enqueued_at <= result.started_at <= result.last_attempted_at
    assert result.last_attempted_at <= result.finished_at
    assert tasks.add.get_result(kept.id).return_value == 5
    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result(lost.id)
    assert [run.args for run in outbox.runs("add")] == [(2, 3)]
    assert not OutboxEvent.objects.exists()  # the call row went with the task's success


def test_enqueue_in_autocommit_runs_once_its_statement_committed(relay):
    relay()
    assert connection.get_autocommit()
    result = finished(tasks.add.enqueue(20, 22))
    assert result.return_value == 42


def test_a_task_starts_on_its_commit_notification_not_on_the_poll(relay):
    relay(poll_interval=NO_POLL)
    with transaction.atomic():
        result = tasks.add.enqueue(1, 1)
    # Well under the poll interval: only the commit's NOTIFY can have woken the calls lane.
    assert finished(result, timeout=NO_POLL / 4).status == TaskResultStatus.SUCCESSFUL


def test_retries_with_backoff_then_succeeds_with_the_attempt_in_its_context(relay, fast_retries):
    relay(poll_interval=0.05)
    result = finished(tasks.flaky.enqueue(fail_until=2))
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 3
    assert result.attempts == 3
    assert [error.exception_class for error in result.errors] == [ValueError, ValueError]
    assert "attempt 1 fails" in result.errors[0].traceback
    assert "attempt 2 fails" in result.errors[1].traceback
    assert [run.args for run in outbox.runs("flaky")] == [(1,), (2,), (3,)]


def test_dead_after_max_attempts_is_failed_and_shown_by_outbox_status(relay, fast_retries):
    relay(poll_interval=0.05)
    result = finished(tasks.always_fails.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 3
    assert len(result.errors) == 3
    assert result.errors[-1].exception_class is RuntimeError
    assert "this task always fails" in result.errors[-1].traceback
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value
    assert OutboxEvent.objects.get().status == "dead"
    out = io.StringIO()
    call_command("outbox_status", stdout=out)
    assert "tasks: FAILED 1" in out.getvalue()


def test_a_failed_attempt_rolls_back_the_tasks_writes(relay):
    with pgoutbox_settings(MAX_ATTEMPTS=1):
        relay()
        result = finished(tasks.writes_then_fails.enqueue("written"))
    assert result.status == TaskResultStatus.FAILED
    assert not Order.objects.filter(reference="written").exists()


def test_system_exit_unprintable_errors_and_non_json_returns_fail_only_their_task(relay):
    with pgoutbox_settings(MAX_ATTEMPTS=1):
        relay()
        exits = finished(tasks.exits.enqueue())
        unprintable = finished(tasks.raises_unprintable.enqueue())
        not_json = finished(tasks.returns_object.enqueue())
        nul = finished(tasks.raises_nul.enqueue())
        after = finished(tasks.add.enqueue(1, 2))
    assert exits.status == TaskResultStatus.FAILED
    assert exits.errors[0].exception_class is SystemExit
    assert unprintable.status == TaskResultStatus.FAILED
    assert unprintable.errors[0].exception_class is tasks.Unprintable
    assert "Unprintable: <exception str() failed>" in unprintable.errors[0].traceback
    assert not_json.status == TaskResultStatus.FAILED
    assert not_json.errors[0].exception_class is SerializationError
    assert "return value of task tests.app.tasks.returns_object" in not_json.errors[0].traceback
    assert nul.status == TaskResultStatus.FAILED
    assert "ValueError: a\\x00b" in nul.errors[0].traceback
    assert after.return_value == 3  # the relay survived them all


def test_run_after_defers_the_start(relay):
    relay(poll_interval=0.05)
    run_after = timezone.now() + datetime.timedelta(seconds=1)
    result = finished(tasks.add.using(run_after=run_after).enqueue(1, 2))
    assert result.started_at >= run_after


def test_higher_priority_tasks_of_a_backlog_start_first(relay):
    with transaction.atomic():
        for name, priority in [("low", -10), ("default", 0), ("urgent", 50), ("high", 10)]:
            tasks.step.using(priority=priority).enqueue(name)
    relay()
    wait_until(lambda: len(outbox.runs("step")) == 4)
    assert [run.args[0] for run in outbox.runs("step")] == ["urgent", "high", "default", "low"]


def test_a_keep_order_queue_runs_in_enqueue_order(relay):
    relay()
    for n in range(10):
        with transaction.atomic():
            tasks.ordered_step.enqueue(n)
    wait_until(lambda: len(outbox.runs("ordered_step")) == 10)
    assert [run.args[0] for run in outbox.runs("ordered_step")] == list(range(10))
    # A run is recorded inside its task, before its transaction removes the call row.
    wait_until(lambda: not OutboxEvent.objects.exists())


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((object(),), "arguments of task tests.app.tasks.add must be JSON"),
        ((float("nan"), 1), "must be JSON"),
        (("a\x00b", 1), "NUL"),
    ],
)
def test_arguments_that_are_not_json_raise_before_anything_is_written(args, match):
    with transaction.atomic():
        with pytest.raises(SerializationError, match=match):
            tasks.add.enqueue(*args)
        assert Order.objects.create(reference="still usable")  # the transaction goes on
    assert not OutboxEvent.objects.exists()
    assert not OutboxTaskResult.objects.exists()


def test_unknown_queue_and_bad_priority_are_refused():
    with pytest.raises(InvalidTask, match="Queue 'nowhere' is not valid"):
        tasks.add.using(queue_name="nowhere")
    with pytest.raises(InvalidTask, match="priority"):
        tasks.add.using(priority=1000)
    assert not OutboxTaskResult.objects.exists()


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"DATABASE": "missing"}, "DATABASE"),
        ({"KEEP_ORDER_QUEUES": "ordered"}, "KEEP_ORDER_QUEUES"),
        ({"KEEP_ORDER_QUEUES": ["elsewhere"]}, "missing from QUEUES"),
        ({"BATCH": 3}, "unknown key"),
    ],
)
def test_wrong_options_are_refused_naming_the_key(options, match):
    with pytest.raises(InvalidTaskBackend, match=match):
        OutboxTaskBackend("broken", {"QUEUES": ["default"], "OPTIONS": options})


def test_unknown_result_ids_do_not_exist():
    for result_id in ["not-a-uuid", "1f0b9a5e-6a61-4a8e-9d5e-0c8e4b3c2a10"]:
        with pytest.raises(TaskResultDoesNotExist):
            tasks.add.get_result(result_id)


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_a_second_alias_writes_in_that_alias_transaction(relay):
    relay()
    other_add = tasks.add.using(backend="other")
    with pytest.raises(RuntimeError), transaction.atomic(using="other"):
        other_add.enqueue(1, 1)
        raise RuntimeError("roll back the other alias")
    with transaction.atomic(using="other"):
        kept = other_add.enqueue(3, 4)
    result = finished(kept)
    assert result.backend == "other"
    assert result.return_value == 7
    assert [run.args for run in outbox.runs("add")] == [(3, 4)]


def test_two_listeners_run_each_task_once(relay):
    relay()
    relay()
    with transaction.atomic():
        results = [tasks.add.enqueue(n, 0) for n in range(60)]
    for result in results:
        assert finished(result).return_value == result.args[0]
    assert sorted(run.args[0] for run in outbox.runs("add")) == list(range(60))


def test_an_unregistered_task_waits_ready_for_a_relay_that_has_it(relay, monkeypatch):
    # A relay deployed without the task's module hands it back, uncounted: READY, never FAILED
    # by that relay (system check W001 names it meanwhile).
    result_id = "1f0b9a5e-6a61-4a8e-9d5e-0c8e4b3c2a11"
    with pgoutbox_settings(RETRY_BACKOFF_BASE=0.05):
        relay(poll_interval=0.05)  # a handed-back call is found again by the poll
        with connection.cursor() as cursor:
            cursor.execute(
                query("insert_task"),
                {
                    "id": result_id,
                    "stream": "default",
                    "function": "task:tests.app.never_imported.gone",
                    "payload": '{"args": [4, 5], "kwargs": {}}',
                    "run_after": None,
                    "priority": 0,
                    "ordered": False,
                    "task_path": "tests.app.tasks.add",
                    "backend": "default",
                    "queue_name": "default",
                    "args": "[4, 5]",
                    "kwargs": "{}",
                },
            )
        event = wait_until(lambda: OutboxEvent.objects.filter(last_error__isnull=False).first())
        assert "'tests.app.never_imported.gone' is not registered" in event.last_error
        time.sleep(1)  # handed back again and again
        waiting = tasks.add.get_result(result_id)
        assert (waiting.status, waiting.attempts, waiting.errors) == ("READY", 0, [])
        assert OutboxEvent.objects.get().status == "pending"
        assert not outbox.runs()
        # The code arrives (as in a relay deployed with it): the task runs.
        monkeypatch.setitem(
            registry._functions, "task:tests.app.never_imported.gone", TaskRunner(tasks.add)
        )
        done = finished(tasks.add.get_result(result_id))
    assert (done.status, done.return_value, done.attempts) == ("SUCCESSFUL", 9, 1)
    assert "tests.app.never_imported" not in sys.modules


def test_an_unregistered_head_of_a_keep_order_queue_holds_it_until_a_relay_has_it(
    relay, monkeypatch
):
    with pgoutbox_settings(RETRY_BACKOFF_BASE=0.05):
        relay(poll_interval=0.05)
        with transaction.atomic(), connection.cursor() as cursor:
            ordering.lock_stream(cursor, "ordered", connection)
            cursor.execute(
                query("insert_task"),
                {
                    "id": "1f0b9a5e-6a61-4a8e-9d5e-0c8e4b3c2a12",
                    "stream": "ordered",
                    "function": "task:tests.app.never_imported.first",
                    "payload": '{"args": [0], "kwargs": {}}',
                    "run_after": None,
                    "priority": 0,
                    "ordered": True,
                    "task_path": "tests.app.tasks.ordered_step",
                    "backend": "default",
                    "queue_name": "ordered",
                    "args": "[0]",
                    "kwargs": "{}",
                },
            )
            behind = tasks.ordered_step.enqueue(1)
        wait_until(lambda: OutboxEvent.objects.filter(last_error__isnull=False).exists())
        time.sleep(1)
        assert outbox.runs() == []
        assert tasks.ordered_step.get_result(behind.id).status == "READY"
        monkeypatch.setitem(
            registry._functions,
            "task:tests.app.never_imported.first",
            TaskRunner(tasks.ordered_step),
        )
        finished(behind)
    assert [run.args[0] for run in outbox.runs("ordered_step")] == [0, 1]


def test_aenqueue_and_aget_result(relay):
    relay()
    result = async_to_sync(tasks.add.aenqueue)(5, 6)
    wait_until(lambda: tasks.add.get_result(result.id).is_finished)
    fetched = async_to_sync(tasks.add.aget_result)(result.id)
    assert fetched.return_value == 11


def test_event_cleaner_deletes_finished_results_past_their_retention(relay):
    relay()
    done = finished(tasks.add.enqueue(1, 2))
    with pgoutbox_settings(TASK_RESULT_RETENTION=datetime.timedelta(hours=1)):
        call_command("event_cleaner", stdout=io.StringIO())
        assert OutboxTaskResult.objects.filter(id=done.id).exists()  # within its retention
        OutboxTaskResult.objects.filter(id=done.id).update(
            finished_at=timezone.now() - datetime.timedelta(hours=2)
        )
        waiting = tasks.add.using(run_after=timezone.now() + datetime.timedelta(days=1)).enqueue(
            0, 0
        )
        out = io.StringIO()
        call_command("event_cleaner", stdout=out)
    assert "Successfully deleted 1 task results" in out.getvalue()
    assert list(OutboxTaskResult.objects.values_list("id", flat=True)) == [
        __import__("uuid").UUID(waiting.id)
    ]


def test_a_running_task_shows_running_with_its_attempt(relay):
    relay()
    tasks.GATE.clear()
    result = tasks.waits_for_gate.enqueue()
    try:
        running = wait_until(
            lambda: (r := tasks.waits_for_gate.get_result(result.id)).status == "RUNNING" and r
        )
        assert running.attempts == 1 and running.started_at is not None
        with pytest.raises(ValueError, match="not finished yet"):
            _ = running.return_value
    finally:
        tasks.GATE.set()
    assert finished(result).status == TaskResultStatus.SUCCESSFUL


def test_tasks_reuse_the_relays_connection_even_with_conn_max_age_zero(relay):
    from django.conf import settings

    assert settings.DATABASES["default"].get("CONN_MAX_AGE", 0) == 0
    relay()
    first = finished(tasks.backend_pid.enqueue()).return_value
    second = finished(tasks.backend_pid.enqueue()).return_value
    assert first == second  # not a new session (several milliseconds) per task


def test_a_failed_task_requeued_by_outbox_requeue_runs_again(relay):
    with pgoutbox_settings(MAX_ATTEMPTS=1):
        relay(poll_interval=0.05)
        failed = finished(tasks.flaky.enqueue(fail_until=1))
        assert failed.status == TaskResultStatus.FAILED
        call_command("outbox_requeue", "--all", stdout=io.StringIO())
        again = wait_until(
            lambda: (r := tasks.flaky.get_result(failed.id)).status == "SUCCESSFUL" and r
        )
    assert again.return_value == 2 and again.attempts == 2
    assert len(again.errors) == 1  # the first attempt's


def test_a_backslash_before_u0000_is_text_not_a_nul_and_round_trips(relay):
    # The characters \u0000 (a backslash, then "u0000") are JSON-escaped as \\u0000: no NUL.
    relay()
    escaped = "C:\\u0000dir"
    result = finished(tasks.add.enqueue(escaped, "\\\\u0000"))
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.args == [escaped, "\\\\u0000"]
    assert result.return_value == escaped + "\\\\u0000"


def test_a_task_whose_session_is_terminated_mid_run_runs_again_and_succeeds(relay, fast_retries):
    relay(poll_interval=0.05)  # the retry is due after its backoff, found by the poll
    result = killed_mid_run()
    done = finished(result)
    assert done.status == TaskResultStatus.SUCCESSFUL, done.errors
    assert done.attempts == 2
    assert len(tasks.SESSIONS) == 2 and tasks.SESSIONS[0] != tasks.SESSIONS[1]


def test_tasks_handed_back_unstarted_behind_a_failed_keep_order_head_show_ready(relay):
    # The head fails; the tasks leased with it are handed back without running: READY, with
    # no attempt, however long the head's retry takes.
    with pgoutbox_settings(RETRY_BACKOFF_BASE=30, RETRY_BACKOFF_MAX=30):
        head = tasks.flaky.using(queue_name="ordered")
        with transaction.atomic():
            failing = head.enqueue(fail_until=1)
            behind = [tasks.ordered_step.enqueue(n) for n in range(3)]
        relay()
        wait_until(lambda: tasks.flaky.get_result(failing.id).errors)
        # They are handed back just after the head's failure commits.
        for result in behind:
            wait_until(lambda r=result: tasks.ordered_step.get_result(r.id).status == "READY")
            fresh = tasks.ordered_step.get_result(result.id)
            assert (fresh.status, fresh.attempts, fresh.started_at) == ("READY", 0, None)
        assert outbox.runs("ordered_step") == []


@pytest.mark.parametrize("priority", [True, False])
def test_a_bool_priority_is_refused_and_the_transaction_goes_on(priority):
    # Django's check takes True for 1; PostgreSQL refused the boolean in the caller's
    # transaction, which was then lost.
    with transaction.atomic():
        with pytest.raises(InvalidTask, match=f"priority must be an int, got {priority!r}"):
            tasks.add.using(priority=priority).enqueue(1, 2)
        assert Order.objects.create(reference="still usable")  # the transaction goes on
    assert not OutboxTaskResult.objects.exists()


def test_a_dead_tasks_event_purged_in_the_admin_leaves_its_result_failed(relay, admin_client):
    # A task dead without an outcome of its own (its last attempt's session was killed) shows
    # FAILED through its dead event; purging that event must not turn it back to RUNNING.
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
    from django.urls import reverse

    with pgoutbox_settings(MAX_ATTEMPTS=1):
        relay()
        result = killed_mid_run()
        dead = finished(result)
        assert dead.status == TaskResultStatus.FAILED
        event = OutboxEvent.objects.get(status="dead")
        page = admin_client.post(
            reverse("admin:pgoutbox_outboxevent_changelist"),
            {"action": "purge", ACTION_CHECKBOX_NAME: [event.pk], "post": "yes"},
        )
        assert page.status_code == 302 and not OutboxEvent.objects.exists()
        purged = tasks.waits_for_gate_on_its_session.get_result(result.id)
        assert purged.status == TaskResultStatus.FAILED
        assert purged.finished_at is not None
        assert purged.errors[-1].exception_class_path == "pgoutbox.errors.TaskAbandoned"
        assert "transaction lost" in purged.errors[-1].traceback


@pytest.mark.parametrize("queue", ["default", "ordered"])
def test_a_task_is_leased_and_shown_running_in_one_round_trip(queue):
    """The lease and RUNNING are one statement: a task starts one round trip after its
    relay wakes for it, not two (the keep-order path leases in the same statement too)."""
    from pgoutbox import db
    from pgoutbox.conf import get_settings
    from pgoutbox.relay.store import CallStore
    from tests.support.round_trips import round_trips

    task = tasks.add if queue == "default" else tasks.ordered_step
    result = task.enqueue(2, 3) if queue == "default" else task.enqueue(1)
    store = CallStore(db.connect(db.connection_params("default"), autocommit=True))
    try:
        streams = store.ordered_streams([])
        assert streams == ([] if queue == "default" else ["ordered"])
        with round_trips(store.conn) as counted:
            if queue == "default":
                rows = store.lease_calls([], 10, get_settings().call_lease)
            else:
                rows = store.lease_ordered(streams[0], 10, get_settings().call_lease) or []
        assert [r.attempts for r in rows] == [1] and rows[0].lease is not None
        running = task.get_result(result.id)
        assert running.status == TaskResultStatus.RUNNING and running.attempts == 1
        # The lease alone: one statement; a keep-order stream's: one transaction of five
        # round trips (BEGIN, its lock, its claim, the lease with RUNNING, COMMIT).
        assert counted == ([1] if queue == "default" else [5])
    finally:
        store.conn.close()
