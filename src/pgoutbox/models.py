"""ORM views of pgoutbox's tables; the schema itself comes from migrations_sql/."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class OutboxEvent(models.Model):
    """A row of ``pgoutbox_event``: one event waiting to be published (or dead, or kept sent)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DEAD = "dead"
        SENT = "sent"

    id = models.BigAutoField(primary_key=True)
    stream = models.TextField(default="", blank=True)
    kind = models.TextField(default="message")
    destination = models.TextField(null=True, blank=True)
    # The column "body" (text) is for plain-SQL producers; a trigger moves it into body_bytes.
    body = models.BinaryField(default=b"", db_column="body_bytes")
    headers = models.JSONField(default=dict)
    function = models.TextField(null=True, blank=True)
    args = models.JSONField(null=True, blank=True)
    message_id = models.UUIDField(
        unique=True,
        editable=False,
        db_default=models.Func(function="gen_random_uuid", output_field=models.UUIDField()),
    )
    created_at = models.DateTimeField(editable=False, db_default=Now())
    available_at = models.DateTimeField(db_default=Now())
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(null=True, blank=True)
    status = models.TextField(choices=Status.choices, default=Status.PENDING)
    sent_at = models.DateTimeField(null=True, blank=True)
    # keep-order function events: run only in id order, by the relay holding the stream's lock.
    ordered = models.BooleanField(default=False)
    # Calls are leased by priority (higher first), then id: Django tasks' priority.
    priority = models.SmallIntegerField(default=0)

    class Meta:
        db_table = "pgoutbox_event"
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.kind} {self.id} to {self.destination or self.function} ({self.status})"


class ReceivedMessage(models.Model):
    """A row of ``pgoutbox_received``: a message id one consumer (its queue) has handled."""

    id = models.BigAutoField(primary_key=True)
    consumer = models.TextField(default="")
    message_id = models.TextField()
    destination = models.TextField(default="")
    body = models.BinaryField(default=b"")
    headers = models.JSONField(default=dict)
    status = models.TextField(default="succeeded")
    received_at = models.DateTimeField(editable=False, db_default=Now())
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "pgoutbox_received"
        constraints = (
            models.UniqueConstraint(
                fields=("consumer", "message_id"),
                name="pgoutbox_received_consumer_message_id_key",
            ),
        )

    def __str__(self) -> str:
        return self.message_id


class OutboxTaskResult(models.Model):
    """A row of ``pgoutbox_task_result``: what a Django task enqueued through
    :class:`pgoutbox.tasks.OutboxTaskBackend` became. Its call waits in ``pgoutbox_event``."""

    class Status(models.TextChoices):
        READY = "READY"
        RUNNING = "RUNNING"
        SUCCESSFUL = "SUCCESSFUL"
        FAILED = "FAILED"

    id = models.UUIDField(primary_key=True)
    event_id = models.BigIntegerField(unique=True)
    task_path = models.TextField()
    backend = models.TextField()
    queue_name = models.TextField()
    priority = models.SmallIntegerField(default=0)
    run_after = models.DateTimeField(null=True, blank=True)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    status = models.TextField(choices=Status.choices, default=Status.READY)
    enqueued_at = models.DateTimeField(editable=False, db_default=Now())
    started_at = models.DateTimeField(null=True, blank=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    return_value = models.JSONField(null=True, blank=True)
    errors = models.JSONField(default=list)
    worker_ids = models.JSONField(default=list)

    class Meta:
        db_table = "pgoutbox_task_result"
        ordering = ("-enqueued_at",)

    def __str__(self) -> str:
        return f"{self.task_path} {self.id} ({self.status})"
