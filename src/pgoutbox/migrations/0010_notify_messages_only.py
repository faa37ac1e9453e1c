"""Trigger version 3 from migrations_sql/0010_notify_messages_only.sql: listeners are notified
for message rows only (calls wake the calls lane through their own channel)."""

from django.db import migrations

from pgoutbox.sql import migration_sql


class Migration(migrations.Migration):
    dependencies = [("pgoutbox", "0009_task_state_v2")]

    operations = [
        migrations.RunSQL(
            migration_sql("0010_notify_messages_only.sql"),
            migration_sql("0010_notify_messages_only.down.sql"),
        )
    ]
