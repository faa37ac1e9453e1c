"""One exception hierarchy for pgoutbox; every error keeps its cause."""

from __future__ import annotations


class PgOutboxError(Exception):
    """Base class of every error pgoutbox raises."""


class SerializationError(PgOutboxError, TypeError):
    """A body or header cannot be encoded; raised in the producer, before any row is written."""


class InvalidEventError(PgOutboxError, ValueError):
    """An event's destination, stream, headers or size is not acceptable."""


class DatabaseError(PgOutboxError):
    """The database could not be reached or answered with an error."""


class TransportError(PgOutboxError):
    """Base of broker-side errors."""


class TransportUnavailable(TransportError):
    """The broker cannot be reached: nothing was published; retry after a pause."""


class RegistryError(PgOutboxError):
    """A function cannot be registered, or a registered one cannot be used as asked."""


class KeepOrderConflict(PgOutboxError):
    """A transaction that already writes one keep-order stream waited too long for another
    one that a second transaction holds: waiting on could deadlock, so it gives up first."""


class ConsumerError(PgOutboxError):
    """Base of the ``subscribe`` consumer's errors."""


class NotInTransaction(ConsumerError, RuntimeError):
    """``payload.save()`` was called outside ``transaction.atomic()`` (or inside atomic blocks
    of several databases without ``using=``): the inbox row must commit with your writes."""


class AlreadyReceived(ConsumerError):
    """This consumer already recorded the message id (a redelivery, or a concurrent consumer of
    the same queue that committed first): the callback's transaction must roll back."""


class TaskAbandoned(PgOutboxError):
    """A Django task's attempt that ended without an exception of its own: its relay stopped
    (killed, crashed) or lost its transaction, or the relay gave up on it after every run ended
    that way. Its ``TaskResult.errors`` entry carries the relay's reason as the traceback."""


# How a TaskAbandoned shows in a task result's errors (its exception_class_path).
TASK_ABANDONED_PATH = f"{TaskAbandoned.__module__}.{TaskAbandoned.__qualname__}"
