"""Schema from migrations_sql/0001_initial.sql; the ORM's view of it as state only."""

import django.db.models.functions.datetime
from django.db import migrations, models

from pgoutbox.sql import migration_sql


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    migration_sql("0001_initial.sql"), migration_sql("0001_initial.down.sql")
                )
            ],
            state_operations=[
                migrations.CreateModel(
                    name="OutboxEvent",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("stream", models.TextField(blank=True, default="")),
                        ("kind", models.TextField(default="message")),
                        ("destination", models.TextField(blank=True, null=True)),
                        ("body", models.BinaryField(default=b"")),
                        ("headers", models.JSONField(default=dict)),
                        ("function", models.TextField(blank=True, null=True)),
                        ("args", models.JSONField(blank=True, null=True)),
                        (
                            "message_id",
                            models.UUIDField(
                                db_default=models.Func(
                                    function="gen_random_uuid", output_field=models.UUIDField()
                                ),
                                editable=False,
                                unique=True,
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(
                                db_default=django.db.models.functions.datetime.Now(), editable=False
                            ),
                        ),
                        (
                            "available_at",
                            models.DateTimeField(
                                db_default=django.db.models.functions.datetime.Now()
                            ),
                        ),
                        ("attempts", models.IntegerField(default=0)),
                        ("last_error", models.TextField(blank=True, null=True)),
                        (
                            "status",
                            models.TextField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("dead", "Dead"),
                                    ("sent", "Sent"),
                                ],
                                default="pending",
                            ),
                        ),
                        ("sent_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "db_table": "pgoutbox_event",
                        "ordering": ("id",),
                    },
                ),
                migrations.CreateModel(
                    name="ReceivedMessage",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("message_id", models.TextField(unique=True)),
                        ("destination", models.TextField(default="")),
                        ("body", models.BinaryField(default=b"")),
                        ("headers", models.JSONField(default=dict)),
                        ("status", models.TextField(default="succeeded")),
                        (
                            "received_at",
                            models.DateTimeField(
                                db_default=django.db.models.functions.datetime.Now(), editable=False
                            ),
                        ),
                        ("processed_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "db_table": "pgoutbox_received",
                    },
                ),
            ],
        ),
    ]
