"""Ordered message streams from plain SQL (``pgoutbox_send(..., ordered => true)``), from
migrations_sql/0007_ordered_messages.sql."""

from django.db import migrations

from pgoutbox.sql import migration_sql


class Migration(migrations.Migration):
    dependencies = [("pgoutbox", "0006_operations")]

    operations = [
        migrations.RunSQL(
            migration_sql("0007_ordered_messages.sql"),
            migration_sql("0007_ordered_messages.down.sql"),
        )
    ]
