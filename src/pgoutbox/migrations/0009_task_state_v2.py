"""A task's state read the same way everywhere (``pgoutbox_task_state_v2``) and ordered
messages that need a stream, from migrations_sql/0009_task_state_v2.sql."""

from django.db import migrations

from pgoutbox.sql import migration_sql


class Migration(migrations.Migration):
    dependencies = [("pgoutbox", "0008_task_results")]

    operations = [
        migrations.RunSQL(
            migration_sql("0009_task_state_v2.sql"),
            migration_sql("0009_task_state_v2.down.sql"),
        )
    ]
