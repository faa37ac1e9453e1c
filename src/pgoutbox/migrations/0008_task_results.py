"""Django Tasks' results from migrations_sql/0008_task_results.sql: the ``priority`` column of
events and the ``pgoutbox_task_result`` table."""

import django.db.models.functions.datetime
from django.db import migrations, models

from pgoutbox.sql import migration_sql


class Migration(migrations.Migration):
    dependencies = [("pgoutbox", "0007_ordered_messages")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    migration_sql("0008_task_results.sql"),
                    migration_sql("0008_task_results.down.sql"),
                )
            ],
            state_operations=[
                migrations.AddField(
                    model_name="outboxevent",
                    name="priority",
                    field=models.SmallIntegerField(default=0),
                ),
                migrations.CreateModel(
                    name="OutboxTaskResult",
                    fields=[
                        ("id", models.UUIDField(primary_key=True, serialize=False)),
                        ("event_id", models.BigIntegerField(unique=True)),
                        ("task_path", models.TextField()),
                        ("backend", models.TextField()),
                        ("queue_name", models.TextField()),
                        ("priority", models.SmallIntegerField(default=0)),
                        ("run_after", models.DateTimeField(blank=True, null=True)),
                        ("args", models.JSONField(default=list)),
                        ("kwargs", models.JSONField(default=dict)),
                        (
                            "status",
                            models.TextField(
                                choices=[
                                    ("READY", "Ready"),
                                    ("RUNNING", "Running"),
                                    ("SUCCESSFUL", "Successful"),
                                    ("FAILED", "Failed"),
                                ],
                                default="READY",
                            ),
                        ),
                        (
                            "enqueued_at",
                            models.DateTimeField(
                                db_default=django.db.models.functions.datetime.Now(), editable=False
                            ),
                        ),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("last_attempted_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("return_value", models.JSONField(blank=True, null=True)),
                        ("errors", models.JSONField(default=list)),
                        ("worker_ids", models.JSONField(default=list)),
                    ],
                    options={
                        "db_table": "pgoutbox_task_result",
                        "ordering": ("-enqueued_at",),
                    },
                ),
            ],
        )
    ]
