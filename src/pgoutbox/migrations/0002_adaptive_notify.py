"""Trigger version 2 from migrations_sql/0002_adaptive_notify.sql: pgoutbox.notify = 'adaptive'."""

from django.db import migrations

from pgoutbox.sql import migration_sql


class Migration(migrations.Migration):
    dependencies = [("pgoutbox", "0001_initial")]

    operations = [
        migrations.RunSQL(
            migration_sql("0002_adaptive_notify.sql"),
            migration_sql("0002_adaptive_notify.down.sql"),
        )
    ]
