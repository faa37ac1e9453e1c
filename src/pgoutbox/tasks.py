"""A Django Tasks backend (Django >= 6.0) on the outbox's calls lane.

``enqueue()`` writes the task in the caller's transaction on the backend's database alias
(``OPTIONS["DATABASE"]``, default ``"default"``): a call row of ``pgoutbox_event`` plus its
result row in ``pgoutbox_task_result``, in one statement, with a NOTIFY that wakes the relays'
calls lanes at COMMIT. Rolled back, it never runs; committed, ``outbox_listen`` starts it
within milliseconds and runs it at least once, as any call: leased (the result shows RUNNING),
run in a transaction of its own in which its return value (or its error) is stored and its
call row removed, retried with the engine's backoff, dead (FAILED) after ``MAX_ATTEMPTS``; a
relay that dies mid-task hands it to another after ``CALL_LEASE``.

The relay runs only tasks registered in its own process: Django validates each ``@task`` with
its backend when the task is defined, and that registers it under ``task:<module path>``.
Nothing is ever imported by a name read from the database. ``PgOutboxConfig.ready()`` imports
every app's ``tasks`` module when this backend is configured (and the modules of
``PGOUTBOX['FUNCTION_MODULES']``).

Queues are streams (``QUEUES``); those listed in ``OPTIONS["KEEP_ORDER_QUEUES"]`` run strictly
in enqueue (commit) order, one at a time. Arguments and return values are JSON.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import traceback
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

from django.db import connections, transaction
from django.dispatch import Signal
from django.tasks import TaskContext, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import Task, TaskError
from django.tasks.exceptions import InvalidTask, InvalidTaskBackend, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.utils.json import normalize_json

from pgoutbox import registry
from pgoutbox.call_runner import RecordsOutcome, restore_session
from pgoutbox.errors import TASK_ABANDONED_PATH, RegistryError, SerializationError
from pgoutbox.policy import Failure
from pgoutbox.producer import ordering
from pgoutbox.sql import query
from pgoutbox.validation import stream_error

__all__ = ["OutboxTaskBackend"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_OPTIONS = frozenset({"DATABASE", "KEEP_ORDER_QUEUES"})
# A NUL as JSON escapes it: \u0000 after an even number of backslashes (the characters
# backslash-u-0000 in a string are written \\u0000, which is not a NUL).
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_SIGNAL_NAMES = {task_started: "task_started", task_finished: "task_finished"}


class OutboxTaskBackend(BaseTaskBackend):
    """``TASKS = {"default": {"BACKEND": "pgoutbox.tasks.OutboxTaskBackend", "QUEUES": [...],
    "OPTIONS": {"DATABASE": "default", "KEEP_ORDER_QUEUES": [...]}}}``."""

    supports_defer = True
    supports_priority = True
    supports_get_result = True
    supports_async_task = False  # the calls lane runs functions, not coroutines

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        unknown = sorted(set(self.options) - _OPTIONS)
        if unknown:
            raise InvalidTaskBackend(
                f"TASKS[{alias!r}]['OPTIONS']: unknown key(s) {unknown}; "
                f"expected some of {sorted(_OPTIONS)}"
            )
        self.database: str = self.options.get("DATABASE", "default")
        if not isinstance(self.database, str) or self.database not in connections.settings:
            raise InvalidTaskBackend(
                f"TASKS[{alias!r}]['OPTIONS']['DATABASE'] must name an alias of DATABASES, "
                f"got {self.database!r}"
            )
        keep_order = self.options.get("KEEP_ORDER_QUEUES", ())
        if isinstance(keep_order, str) or not all(isinstance(q, str) for q in keep_order):
            raise InvalidTaskBackend(
                f"TASKS[{alias!r}]['OPTIONS']['KEEP_ORDER_QUEUES'] must be a list of queue "
                f"names, got {keep_order!r}"
            )
        self.keep_order_queues = frozenset(keep_order)
        for queue in sorted(self.queues | self.keep_order_queues):
            error = stream_error(queue)
            if error is not None:
                raise InvalidTaskBackend(f"TASKS[{alias!r}]: queue {queue!r}: {error}")
        stray = sorted(self.keep_order_queues - self.queues) if self.queues else []
        if stray:
            raise InvalidTaskBackend(
                f"TASKS[{alias!r}]['OPTIONS']['KEEP_ORDER_QUEUES'] names queue(s) {stray} "
                f"missing from QUEUES {sorted(self.queues)}"
            )

    def validate_task(self, task: Task[..., Any]) -> None:
        """Django's checks, the queue's name as a stream; then register the task, so that a
        relay in this process may run it."""
        super().validate_task(task)
        if isinstance(task.priority, bool):  # Django's check takes True for 1
            raise InvalidTask(f"priority must be an int, got {task.priority!r}")
        error = stream_error(task.queue_name)
        if error is not None:
            raise InvalidTask(f"queue {task.queue_name!r}: {error}")
        registry.register_as(registry.TASK_PREFIX + task.module_path, TaskRunner(task))

    def enqueue(
        self, task: Task[P, R], args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> TaskResult[P, R]:
        """Write the task in the current transaction of ``OPTIONS["DATABASE"]`` (in autocommit:
        this statement's own). Raises ``SerializationError`` (a ``TypeError``) before writing
        anything when the arguments are not JSON."""
        self.validate_task(task)
        what = f"arguments of task {task.module_path}"
        args_json, kwargs_json = to_json(list(args), what), to_json(dict(kwargs), what)
        result_id = str(uuid.uuid4())
        ordered = task.queue_name in self.keep_order_queues
        connection = connections[self.database]
        params = {
            "id": result_id,
            "stream": task.queue_name,
            "function": registry.TASK_PREFIX + task.module_path,
            "payload": f'{{"args": {args_json}, "kwargs": {kwargs_json}, '
            f'"using": {json.dumps(self.database)}}}',
            "run_after": task.run_after,
            "priority": task.priority,
            "ordered": ordered,
            "task_path": task.module_path,
            "backend": self.alias,
            "queue_name": task.queue_name,
            "args": args_json,
            "kwargs": kwargs_json,
        }
        with connection.cursor() as cursor:
            if ordered:
                ordering.lock_stream(cursor, task.queue_name, connection)
            cursor.execute(query("insert_task"), params)
            (enqueued_at, _) = cursor.fetchone()
        result: TaskResult[P, R] = TaskResult(
            task=task,
            id=result_id,
            status=TaskResultStatus.READY,
            enqueued_at=enqueued_at,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult[..., Any]:
        """The task's result as stored now. Raises ``TaskResultDoesNotExist`` for an unknown
        id (or one past ``TASK_RESULT_RETENTION``), ``RegistryError`` when the task is not
        registered in this process (its module is never imported from a stored name)."""
        return read_result(self.database, "id", result_id)


def read_result(alias: str, key: str, value: Any) -> TaskResult[..., Any]:
    """The result whose ``key`` (``id`` or ``event_id``) is ``value``, on ``alias``."""
    if key == "id":
        try:
            value = str(uuid.UUID(str(value)))
        except ValueError:
            raise TaskResultDoesNotExist(value) from None
    with connections[alias].cursor() as cursor:
        cursor.execute(query(f"task_result_by_{key}"), {key: value})
        row = cursor.fetchone()
    if row is None:
        raise TaskResultDoesNotExist(value)
    return result_of(row)


def result_of(row: Sequence[Any]) -> TaskResult[..., Any]:
    """The ``TaskResult`` of a row of the ``task_result_by_*`` queries' columns."""
    (
        result_id,
        task_path,
        backend,
        queue_name,
        priority,
        run_after,
        args,
        kwargs,
        status,
        enqueued_at,
        started_at,
        last_attempted_at,
        finished_at,
        return_value,
        errors,
        worker_ids,
        lost_error,
    ) = row
    # Django's connections leave jsonb as text.
    args, kwargs, errors, return_value, worker_ids = (
        json.loads(v) if isinstance(v, str) else v
        for v in (args, kwargs, errors, return_value, worker_ids)
    )
    runner = registry.lookup(registry.TASK_PREFIX + task_path)
    if not isinstance(runner, TaskRunner):
        raise RegistryError(
            f"task {task_path!r} of result {result_id} is not registered in this process: "
            "import the module defining it (nothing is imported from a stored name)"
        )
    task = runner.task.using(
        priority=priority, queue_name=queue_name, run_after=run_after, backend=backend
    )
    task_errors = [TaskError(**error) for error in errors]
    if lost_error is not None:
        task_errors.append(
            TaskError(exception_class_path=TASK_ABANDONED_PATH, traceback=lost_error)
        )
    result: TaskResult[..., Any] = TaskResult(
        task=task,
        id=str(result_id),
        status=TaskResultStatus(status),
        enqueued_at=enqueued_at,
        started_at=started_at,
        finished_at=finished_at,
        last_attempted_at=last_attempted_at,
        args=args,
        kwargs=kwargs,
        backend=backend,
        errors=task_errors,
        worker_ids=list(worker_ids),
    )
    object.__setattr__(result, "_return_value", return_value)
    return result


class TaskRunner(RecordsOutcome):
    """What the registry holds for a task: runs it for the calls lane and records its
    outcome in its result row, in the call's transaction."""

    def __init__(self, task: Task[..., Any]) -> None:
        self.task = task

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.task.call(*args, **kwargs)

    def run(
        self,
        event_id: int,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        alias: str,
        stored: Sequence[Any] = (),
    ) -> None:
        """Run the task in the call's transaction and store its return value there. Django's
        ``task_started`` is sent before it runs, ``task_finished`` once its success is
        committed (as Django's backends send them, with the result as stored). ``stored``: its
        result row as the relay leased it (else it is read here)."""
        if not stored:
            try:
                started = read_result(alias, "event_id", event_id)
            except TaskResultDoesNotExist:
                stored = (None,)
        if stored and stored[0] is None:
            if self.task.takes_context:
                raise TaskResultDoesNotExist(event_id)
            # Requeued after event_cleaner removed its FAILED result: it runs, unobserved.
            self.task.call(*args, **kwargs)
            restore_session(alias)
            return
        if stored:
            started = result_of(stored)
        send_task_signal(task_started, started)
        if self.task.takes_context:
            context: TaskContext[..., Any] = TaskContext(task_result=started)
            value = self.task.call(context, *args, **kwargs)
        else:
            value = self.task.call(*args, **kwargs)
        restore_session(alias)
        encoded = to_json(value, f"return value of task {self.task.module_path}")
        with connections[alias].cursor() as cursor:
            cursor.execute(query("task_succeeded"), {"event_id": event_id, "value": encoded})
            (finished_at,) = cursor.fetchone()
        done = dataclasses.replace(
            started, status=TaskResultStatus.SUCCESSFUL, finished_at=finished_at
        )
        object.__setattr__(done, "_return_value", json.loads(encoded))
        transaction.on_commit(lambda: send_task_signal(task_finished, done), using=alias)

    def record_failure(
        self, event_id: int, exc: BaseException, failure: Failure, alias: str
    ) -> None:
        """Store the attempt's error; a dead task is FAILED, and ``task_finished`` is sent once
        that is committed (an attempt retried later has not finished)."""
        kind = type(exc)
        params: dict[str, Any] = {
            "event_id": event_id,
            "exception_class_path": f"{kind.__module__}.{kind.__qualname__}",
            "traceback": format_error(exc),
            "dead": failure.dead,
        }
        with connections[alias].cursor() as cursor:
            cursor.execute(query("task_failed"), params)
        if failure.dead and cursor.rowcount:
            failed = read_result(alias, "event_id", event_id)
            transaction.on_commit(lambda: send_task_signal(task_finished, failed), using=alias)


def send_task_signal(signal: Signal, task_result: TaskResult[..., Any]) -> None:
    """Send one of Django's task signals as Django's backends do (sender: the backend's class),
    robustly: a receiver's error is logged and changes nothing of the task (a raising
    ``send()`` would fail the task, or lose its committed outcome's bookkeeping)."""
    try:
        signal.send_robust(type(task_result.task.get_backend()), task_result=task_result)
    except BaseException:  # a receiver's SystemExit: send_robust only catches Exception
        logger.exception("a receiver of %s raised", _SIGNAL_NAMES.get(signal, "a task signal"))


def to_json(value: Any, what: str) -> str:
    """``value`` as the JSON text stored in a jsonb column; ``SerializationError`` (a
    ``TypeError``) naming ``what`` when it is not JSON or PostgreSQL's jsonb cannot hold it."""
    try:
        text = json.dumps(normalize_json(value), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"{what} must be JSON: {exc}") from exc
    if _JSON_NUL.search(text):
        raise SerializationError(f"{what} must be JSON without NUL characters (jsonb refuses them)")
    return text


def format_error(exc: BaseException) -> str:
    """The exception's traceback as text (an exception whose ``str()`` raises shows as
    ``<exception str() failed>``); PostgreSQL's text refuses NUL characters."""
    return "".join(traceback.format_exception(exc)).replace("\x00", "\\x00")
